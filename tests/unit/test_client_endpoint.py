"""The endpoint the client takes: the stage URL the stack outputs as ApiUrl, with or without a
trailing slash, or the same with the grants route copied on (older outputs ended in /v1/grants)."""

import pytest
from botocore.credentials import Credentials

from eks_jit.client import ApiError, Client

BASE = "https://abc123.execute-api.eu-west-1.amazonaws.com/prod"
CREDS = Credentials("AKIDEXAMPLE", "secret")


@pytest.mark.parametrize("given", [BASE, BASE + "/", BASE + "/v1/grants", BASE + "/v1/grants/"])
def test_the_stage_url_with_or_without_the_grants_route_is_the_same_api(given: str) -> None:
    assert Client(given, region="eu-west-1", credentials=CREDS).endpoint == BASE


def test_an_endpoint_that_is_not_a_url_is_bad_input() -> None:
    with pytest.raises(ApiError) as error:
        Client("abc123.execute-api.eu-west-1.amazonaws.com", credentials=CREDS)
    assert error.value.code == "bad_endpoint"
