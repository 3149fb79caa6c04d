#!/usr/bin/env bash
# Write the man page docker-credential-acr-entra(1) from the binary's own help texts:
# `--help` gives NAME, SYNOPSIS, COMMANDS and ENVIRONMENT, each subcommand's `--help` a
# SUBCOMMANDS entry, so the page cannot drift from the binary. The date is
# SOURCE_DATE_EPOCH's (else today), so the page is reproducible.
#
#   packaging/manpage.sh BINARY > docker-credential-acr-entra.1
#
# A small awk script rather than help2man: help2man reads the second usage line and the
# multi-line command entries of this help text as loose paragraphs, and the page would need
# as much patching as this takes to write.
set -euo pipefail
bin=${1:?usage: manpage.sh BINARY}
name=docker-credential-acr-entra
version=$("$bin" version | sed "s/^$name //")
date=$(date -u -d "@${SOURCE_DATE_EPOCH:-$(date +%s)}" +%Y-%m-%d)


# roff, on text lines only (macro lines start with a dot and are written as meant): a
# backslash becomes \e, a minus \- (so options copy and search as typed), and a leading
# apostrophe is guarded with \&. No help line starts with a dot.
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
    { print }
    END { flush() }'
  echo ".SH SUBCOMMANDS"
  for verb in token configure doctor kubelet; do
    "$bin" "$verb" --help | awk 'NR == 1 { sub(/^usage: /, ""); print ".TP"; print; next } { print }'
  done
  cat <<'TEXT'
.SH EXIT STATUS
0 on success; 1 with one line on standard output saying what went wrong, or
"credentials not found in native keychain" for a registry the helper has no credentials for.
.SH FILES
.TP
~/.cache/acr-entra
tokens and stored credentials (ACR_ENTRA_CACHE_DIR)
.TP
~/.config/acr-entra/config.json
per-registry settings (ACR_ENTRA_CONFIG)
.SH SEE ALSO
The README, with every variable and each client's setup:
/usr/share/doc/docker-credential-acr-entra/README.md
TEXT
} | sed -e '/^\./!{' -e 's/\\/\\e/g' -e 's/-/\\-/g' -e "s/^'/\\\\\&'/" -e '}'
