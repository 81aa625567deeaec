#!/bin/sh
# The container's entrypoint, also runnable outside a container (tests/ops/test_containers.py):
#
#   entrypoint.sh web | worker   run that process type's command from the Procfile
#   entrypoint.sh migrate        apply database migrations, then exit (run once per deploy)
#   entrypoint.sh <command...>   run anything else, e.g. `python manage.py createsuperuser`
#
# Web and worker read their command from the Procfile, so the container, honcho and the docs
# run the very same thing.
set -eu
cd "$(dirname "$0")/.."

procfile_command() {
  command=$(sed -n "s/^$1: //p" Procfile)
  if [ -z "$command" ]; then
    echo "entrypoint: no '$1' process in the Procfile" >&2
    exit 2
  fi
  printf '%s' "$command"
}

case "${1:-web}" in
  web|worker)
    exec sh -c "$(procfile_command "${1:-web}")"
    ;;
  migrate)
    exec python manage.py migrate --noinput
    ;;
  *)
    exec "$@"
    ;;
esac
