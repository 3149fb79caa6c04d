#!/bin/sh
# A deliberately broken helper for the e2e suite's own self-check: it answers
# "not found" for every verb, as a helper that silently swallows every failure
# would. Checks that can fail must fail against it:
#   ACR_ENTRA_BIN=tests/e2e/broken-helper.sh tests/e2e/run.sh
cat >/dev/null 2>&1
echo "credentials not found in native keychain"
exit 1
