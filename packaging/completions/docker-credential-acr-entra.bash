# bash completion for docker-credential-acr-entra: its verbs, each subcommand's options,
# configure's clients, and registry names where a HOST goes. Written by hand (the argument
# parser is hand-written, so there is nothing to generate it from);
# tests/integration/completions.rs drives this file in a real bash and fails when a verb
# or an option in `--help` is missing here.
#
# Registry names come from two places: the helper's own config file, read by the helper
# itself (`list`, whose null-GUID entries are the configured registries, so the config's
# location and format have one reader), and the hosts docker's config.json routes to the
# helper through `credHelpers` (most ACR users have no config file at all).

# The hosts this helper serves, one a line: configured registries and docker's credHelpers.
_docker_credential_acr_entra_registries() {
  # `list` ignores stdin; closing it keeps a terminal out of the helper.
  command docker-credential-acr-entra list </dev/null 2>/dev/null |
    grep -o '"[^"]*":"00000000-0000-0000-0000-000000000000"' | cut -d'"' -f2
  local docker=${DOCKER_CONFIG:-$HOME/.docker}/config.json
  # credHelpers maps host to helper name, strings only, so its object ends at the first `}`.
  [ -r "$docker" ] && tr -d '\n\r' <"$docker" |
    sed -n 's/.*"credHelpers"[[:space:]]*:[[:space:]]*{\([^}]*\)}.*/\1/p' |
    grep -o '"[^"]*"[[:space:]]*:[[:space:]]*"acr-entra"' | cut -d'"' -f2
}

_docker_credential_acr_entra() {
  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
  local verbs="get store erase list version help token configure doctor kubelet"
  local words= hosts
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W "$verbs --help --version" -- "$cur"))
    return
  fi
  # A HOST goes here unless the word starts an option.
  case "$cur" in -*) hosts= ;; *) hosts=$(_docker_credential_acr_entra_registries | sort -u) ;; esac
  case "${COMP_WORDS[1]}" in
    token)
      if [ "$prev" = --scope ]; then
        words="repository: registry:catalog:*"
      elif [ "$COMP_CWORD" -eq 2 ] && [ -n "$hosts" ]; then
        words=$hosts
      else
        words="--json --scope --help"
      fi ;;
    configure)
      if [ "$COMP_CWORD" -eq 2 ]; then
        words="docker podman helm buildah skopeo --remove --help"
      elif [ "$COMP_CWORD" -eq 3 ] && [ "${COMP_WORDS[2]}" = --remove ]; then
        words="docker podman helm buildah skopeo"
      elif [ -n "$hosts" ]; then
        words=$hosts
      else
        words="--all --force --dry-run --help"
      fi ;;
    doctor)
      if [ "$COMP_CWORD" -eq 2 ] && [ -n "$hosts" ]; then words=$hosts; else words="--help"; fi ;;
    kubelet)
      [ "$prev" = --registry-mirror ] && return
      words="--registry-mirror --help" ;;
    help)
      [ "$COMP_CWORD" -eq 2 ] && words=$verbs ;;
    get|store|erase|list|version)
      words="--help" ;;
  esac
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -F _docker_credential_acr_entra docker-credential-acr-entra
