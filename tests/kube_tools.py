"""Clients of the test API server for tests that act as someone other than the admin."""

from kubernetes import client


def as_service_account(admin: client.ApiClient, namespace: str, name: str) -> client.ApiClient:
    """An API client holding a fresh token of that ServiceAccount (TokenRequest API)."""
    token = (
        client.CoreV1Api(admin)
        .create_namespaced_service_account_token(
            name,
            namespace,
            client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[])),
        )
        .status.token
    )
    settings = client.Configuration()
    settings.host = admin.configuration.host
    settings.ssl_ca_cert = admin.configuration.ssl_ca_cert
    settings.api_key = {"authorization": f"Bearer {token}"}
    return client.ApiClient(settings)
