#!/usr/bin/env python3
"""The eks-jit CDK app (`cdk synth`, `cdk deploy`): see infra/ and docs/deploy.md."""

import sys

from infra.app import main

if __name__ == "__main__":
    sys.exit(main())
