"""Secrets and names shared by the manifest and the tests.

The keys are distinctive strings so a test can grep logs and upstream headers for leaks.
"""

FAKE_PROVIDER_KEY = "prov-secret-abc123"     # the provider's key, from env FAKE_PROVIDER_KEY
SLUICE_TEST_KEY = "client-secret-xyz789"     # client key "tester" (all models), env SLUICE_TEST_KEY
LIMITED_KEY = "limited-key-123"              # client key "limited" (model "smol" only), inline

PROVIDER_NAME = "fake"
PUBLIC_MODELS = {"local": "upstream-local", "smol": "upstream-smol"}  # public -> upstream name

MAX_BODY_BYTES = 65536
DRAIN_TIMEOUT_S = 5

# The environment sluice runs with (added to the test process's own).
SLUICE_ENV = {"FAKE_PROVIDER_KEY": FAKE_PROVIDER_KEY, "SLUICE_TEST_KEY": SLUICE_TEST_KEY}
