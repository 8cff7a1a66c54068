#!/bin/sh
# The gateway function's handler (infra/constructs/gateway.py). The AWS Lambda Web Adapter's
# /opt/bootstrap (AWS_LAMBDA_EXEC_WRAPPER) executes "$LAMBDA_TASK_ROOT/$_HANDLER", this file, instead
# of the Python runtime's own loop; the adapter then turns each function-URL invocation into an HTTP
# request to 127.0.0.1:$AWS_LWA_PORT and streams the answer back (AWS_LWA_INVOKE_MODE=response_stream).
# The bundle's own code and the two layers (/opt/python) come first; the runtime's boto3 is not used.
export PYTHONPATH="${LAMBDA_TASK_ROOT}:/opt/python${PYTHONPATH:+:$PYTHONPATH}"
exec python -m uvicorn eks_jit.server.handlers.gateway:app \
    --host 127.0.0.1 --port "${AWS_LWA_PORT:-8080}" \
    --no-access-log --no-server-header --timeout-graceful-shutdown 1
