# bash completion for docker-credential-acr-entra: its verbs, each subcommand's options
# and configure's clients. Static on purpose (the argument parser is hand-written, so
# there is nothing to generate it from); tests/integration/completions.rs fails when a
# verb or an option in `--help` is missing here.
_docker_credential_acr_entra() {
  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
  local verbs="get store erase list version help token configure doctor kubelet"
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W "$verbs --help --version" -- "$cur"))
    return
  fi
  case "${COMP_WORDS[1]}" in
    token)
      [ "$prev" = --scope ] && { COMPREPLY=($(compgen -W "repository: registry:catalog:*" -- "$cur")); return; }
      COMPREPLY=($(compgen -W "--json --scope --help" -- "$cur")) ;;
    configure)
      if [ "$COMP_CWORD" -eq 2 ]; then
        COMPREPLY=($(compgen -W "docker podman helm --help" -- "$cur"))
      else
        COMPREPLY=($(compgen -W "--all --force --dry-run --help" -- "$cur"))
      fi ;;
    doctor) COMPREPLY=($(compgen -W "--help" -- "$cur")) ;;
    kubelet) [ "$prev" = --registry-mirror ] || COMPREPLY=($(compgen -W "--registry-mirror --help" -- "$cur")) ;;
  esac
}
complete -F _docker_credential_acr_entra docker-credential-acr-entra
