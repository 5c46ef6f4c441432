#!/usr/bin/env bash
# cfn-lint (PyPI `cfn-lint`): offline validation of CloudFormation / AWS SAM templates.
# For a template with `Transform: AWS::Serverless-2016-10-31` it first expands the SAM
# transform locally with aws-sam-translator, then checks the generated CloudFormation
# against the resource schemas bundled in the wheel (no AWS account, no SAM CLI).
#
#   scripts/cfn-lint.sh install          # idempotent: a venv in $INFRA_CACHE/cfn-lint/<version>
#   scripts/cfn-lint.sh lint TEMPLATE... # runs cfn-lint; exit code = cfn-lint's
#                                        # (0 clean, 2 error, 4 warning, 8 informational,
#                                        # or'ed together)
#   scripts/cfn-lint.sh expand TEMPLATE  # the full SAM expansion (CloudFormation JSON) on stdout
#   scripts/cfn-lint.sh version | python
#
# Why `expand`: before translating, cfn-lint replaces an AWS::Serverless::Api's inline
# DefinitionBody with "" (cfnlint/template/transforms/_sam.py), so `lint` never sees how SAM
# merges the OpenAPI body with Auth, GatewayResponses and the functions' Api events. `expand`
# runs the same aws-sam-translator on the template as written (local CodeUri replaced by a
# placeholder S3 URI, region $AWS_DEFAULT_REGION or us-east-1), so that the real RestApi
# body can be checked and the result linted as plain CloudFormation.
#
# Pinned to cfn-lint 1.53.3 on purpose: it is the last release that expands SAM with
# aws-sam-translator (pinned here to 1.111.0, the release current with it). From 1.54.0 on,
# cfn-lint only checks SAM resources against SAM schemas and never sees the generated
# AWS::ApiGateway::Authorizer / GatewayResponse / Lambda::Permission / IAM::Role, so the
# translator's own checks (Auth, Events, Policies) would be lost.
# CFN_LINT_VERSION / SAM_TRANSLATOR_VERSION pick other versions (each gets its own venv).
#
# Network: only `install` needs PyPI. Linting is fully offline: cfn-lint reads its bundled
# schemas (it downloads nothing unless run with --update-specs), and aws-sam-translator only
# fetches remote data for AWS::Serverless::Application with a SAR location, which our
# templates do not use. Checked by running `lint` under `unshare -n` (no network).
# Needs python3 (>= 3.10) with pip.
COMPONENT=cfn-lint
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

VERSION="${CFN_LINT_VERSION:-1.53.3}"
SAM_VERSION="${SAM_TRANSLATOR_VERSION:-1.111.0}"
DIR="$INFRA_CACHE/$COMPONENT/$VERSION-sam$SAM_VERSION"
VENV="$DIR/venv"

do_install() {
  if [ -f "$DIR/.installed" ]; then log "already installed in $VENV"; return 0; fi
  need_pip
  rm -rf "$DIR"; mkdir -p "$DIR"
  log "python3 -m venv --without-pip + pip --python install cfn-lint==$VERSION aws-sam-translator==$SAM_VERSION"
  # --without-pip plus the outer pip's --python saves ~3 s of ensurepip per venv.
  make_venv "$VENV"
  python3 -m pip --python "$VENV/bin/python" install -q --disable-pip-version-check \
      "cfn-lint==$VERSION" "aws-sam-translator==$SAM_VERSION" >&2 \
    || die "pip install failed"
  "$VENV/bin/cfn-lint" --version >/dev/null || die "cfn-lint does not run after install"
  touch "$DIR/.installed"
  log "installed $("$VENV/bin/cfn-lint" --version) ($(du -sh "$VENV" | cut -f1))"
}

do_lint() {
  [ "$#" -ge 1 ] || die "usage: $0 lint TEMPLATE..."
  [ -f "$DIR/.installed" ] || with_install_lock do_install
  # exec: the exit code is cfn-lint's own.
  exec "$VENV/bin/cfn-lint" "$@"
}

do_expand() {
  [ "$#" = 1 ] || die "usage: $0 expand TEMPLATE"
  [ -f "$DIR/.installed" ] || with_install_lock do_install
  AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}" "$VENV/bin/python" - "$1" <<'PY'
import json, sys
from cfnlint.data import Serverless
from cfnlint.decode import decode
from cfnlint.helpers import load_resource
from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.parser import parser
from samtranslator.translator.translator import Translator

template, matches = decode(sys.argv[1])
if matches:
    for m in matches:
        print(m, file=sys.stderr)
    sys.exit(2)
for res in template.get("Resources", {}).values():
    props = res.get("Properties") or {}
    if res.get("Type") == "AWS::Serverless::Function" and isinstance(props.get("CodeUri"), str) \
            and not props["CodeUri"].startswith("s3://"):
        props["CodeUri"] = "s3://placeholder-bucket/code.zip"
try:
    out = Translator(load_resource(Serverless, "ManagedPolicies.json"), parser.Parser()) \
        .translate(template, {}, passthrough_metadata=True)
except InvalidDocumentException as e:
    for cause in e.causes:
        print("SAM transform error:", cause.message, file=sys.stderr)
    sys.exit(2)
json.dump(out, sys.stdout, indent=1, default=str)
print()
PY
}

case "${1:-}" in
  install) with_install_lock do_install ;;
  lint) shift; do_lint "$@" ;;
  expand) shift; do_expand "$@" ;;
  version) echo "$VERSION" ;;
  python) echo "$VENV/bin/python" ;;
  *) echo "usage: $0 install | lint TEMPLATE... | expand TEMPLATE | version | python" >&2; exit 2 ;;
esac
