#!/usr/bin/env bash
# Write the man page docker-credential-acr-entra(1) from the binary's own help texts and
# the README's table of environment variables: `--help` gives NAME, SYNOPSIS, COMMANDS and
# the start of ENVIRONMENT, each subcommand's `--help` a SUBCOMMANDS entry, and every row
# of the README's "Environment variables" table an ENVIRONMENT entry, so the page cannot
# drift from the binary or the README (tests/integration/docs.rs holds the table to the
# variables the code reads). The date is SOURCE_DATE_EPOCH's (else today), so the page is
# reproducible.
#
#   packaging/manpage.sh BINARY [README] > docker-credential-acr-entra.1
#
# A small awk script rather than help2man: help2man reads the second usage line and the
# multi-line command entries of this help text as loose paragraphs, and the page would need
# as much patching as this takes to write.
set -euo pipefail
bin=${1:?usage: manpage.sh BINARY [README]}
readme=${2:-$(dirname "$0")/../README.md}
[ -r "$readme" ] || { echo "manpage.sh: cannot read $readme" >&2; exit 1; }
name=docker-credential-acr-entra
# The version alone: the second word of `version`'s line (the build's details follow it).
version=$("$bin" version | cut -d ' ' -f 2)
date=$(date -u -d "@${SOURCE_DATE_EPOCH:-$(date +%s)}" +%Y-%m-%d)


# roff, on text lines only (macro lines start with a dot and are written as meant): a
# backslash becomes \e, a minus \- (so options copy and search as typed), and a leading
# apostrophe is guarded with \&. No help line starts with a dot. Then, on every line, the
# README's few non-ASCII characters become roff's names for them, so any man reads the page.
{
  "$bin" --help | awk -v name="$name" -v version="$version" -v date="$date" '
    function flush() { if (text != "") { print text; text = "" } }
    NR == 1 {
      sub("^" name ": ", "")
      printf ".TH DOCKER-CREDENTIAL-ACR-ENTRA 1 %s \"%s %s\" \"User Commands\"\n", date, name, version
      print ".SH NAME"; print name " - " $0
      next
    }
    /^Usage: / { print ".SH SYNOPSIS"; sub(/^Usage: +/, ""); print ".nf"; print; usage = 1; next }
    usage && /^ +[^ ]/ { sub(/^ +/, ""); print; next }
    usage { print ".fi"; usage = 0; print ".SH COMMANDS"; next }
    /^  [a-z]/ {
      flush(); line = substr($0, 3)
      # A verb and its text on one line ("get       read ..."), or a synopsis alone.
      if (match(line, /   +/)) { print ".TP"; print substr(line, 1, RSTART - 1); text = substr(line, RSTART + RLENGTH) }
      else { print ".TP"; print line }
      next
    }
    /^   +[^ ]/ { sub(/^ +/, ""); text = (text == "" ? $0 : text " " $0); next }
    /^$/ { flush(); next }
    !env { flush(); print ".SH ENVIRONMENT"; env = 1 }
    # The help points at the README for every variable; here they follow.
    /README/ { next }
    { print }
    END { flush() }'
  printf '.PP\nEmpty values count as unset.\n'
  # Every row of the README table: `| `NAME`, `NAME` | meaning |`. The names become the
  # bold tag (a macro line, so the escaping below leaves it alone), the meaning its text
  # with Markdown links reduced to their words and code quotes dropped.
  awk '
    /^## Environment variables/ { on = 1; next }
    on && /^## / { exit }
    on && /^\| `/ {
      row = substr($0, 3, length($0) - 4)
      at = index(row, " | ")
      names = substr(row, 1, at - 1); text = substr(row, at + 3)
      gsub(/`/, "", names)
      while (match(text, /\[[^]]*\]\([^)]*\)/)) {
        link = substr(text, RSTART, RLENGTH)
        sub(/\]\(.*/, "", link)
        text = substr(text, 1, RSTART - 1) substr(link, 2) substr(text, RSTART + RLENGTH)
      }
      gsub(/`/, "", text)
      print ".TP"; print ".B " names; print text
    }' "$readme"
  echo ".SH SUBCOMMANDS"
  for verb in token configure doctor kubelet; do
    "$bin" "$verb" --help | awk 'NR == 1 { sub(/^usage: /, ""); print ".TP"; print; next } { print }'
  done
  cat <<'TEXT'
.SH EXAMPLES
Check which identity serves a registry, and mint once with each step timed (no token is
printed):
.PP
.nf
docker-credential-acr-entra doctor myacr.azurecr.io
.fi
.PP
Route docker (and BuildKit, docker-py, helm) to the helper for that registry, showing the
change first:
.PP
.nf
docker-credential-acr-entra configure docker myacr.azurecr.io --dry-run
docker-credential-acr-entra configure docker myacr.azurecr.io
.fi
.PP
Take that entry out again, restoring what it replaced:
.PP
.nf
docker-credential-acr-entra configure --remove docker myacr.azurecr.io
.fi
.PP
Log a client in that takes a password on standard input:
.PP
.nf
docker-credential-acr-entra token myacr.azurecr.io |
  helm registry login myacr.azurecr.io --password-stdin \
    -u 00000000-0000-0000-0000-000000000000
.fi
.PP
A service principal in CI, with the helper's log on standard error:
.PP
.nf
export AZURE_CLIENT_ID=... AZURE_TENANT_ID=... AZURE_CLIENT_SECRET=...
ACR_ENTRA_LOG=debug docker pull myacr.azurecr.io/app:latest
.fi
.PP
Two registries with two identities: an entry in ~/.config/acr-entra/config.json names
the identity that serves one registry; the environment's serves the others:
.PP
.nf
{ "registries": { "baseacr.azurecr.io":
    { "credential": "managed-identity", "client_id": "11111111-..." } } }
.fi
.SH EXIT STATUS
0 on success; 1 with one line saying what went wrong: on standard output for get,
store, erase and list, where the clients read it ("credentials not found in native
keychain" for a registry the helper has no credentials for), on standard error for
token, configure, doctor and kubelet.
.SH FILES
.TP
~/.cache/acr-entra
tokens and stored credentials (ACR_ENTRA_CACHE_DIR)
.TP
~/.config/acr-entra/config.json
per-registry settings (ACR_ENTRA_CONFIG)
.SH SEE ALSO
The README, with each client's setup and troubleshooting:
/usr/share/doc/docker-credential-acr-entra/README.md
TEXT
} | sed -e '/^\./!{' -e 's/\\/\\e/g' -e 's/-/\\-/g' -e "s/^'/\\\\\&'/" -e '}' \
    -e 's/—/\\(em/g' -e 's/–/\\(en/g' -e 's/…/.../g' -e 's/×/\\(mu/g'
