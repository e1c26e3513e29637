#!/bin/sh
# Sends a request signed with AWS Signature V4 by curl itself (curl 7.75 or
# later): the gateway accepts it as the `sigv4` scheme.
#
#   API_KEY=… API_SECRET=… ./examples/curl-sigv4.sh http://localhost:8080/api/hello
#   API_KEY=… API_SECRET=… ./examples/curl-sigv4.sh -d '{"a":1}' -H 'Content-Type: application/json' http://localhost:8080/api/items
#
# REGION and SERVICE name the credential scope; a route with `region` or
# `service` set accepts only its own.
set -eu
: "${API_KEY:?set API_KEY}" "${API_SECRET:?set API_SECRET}"
exec curl -sS --aws-sigv4 "aws:amz:${REGION:-us-east-1}:${SERVICE:-execute-api}" --user "$API_KEY:$API_SECRET" "$@"
