# Two commands on a fresh machine: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.PHONY: demo test fuzz lint browser bench clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

# Migrate, create the demo admin, load CLINC150, start embedded Redis (unless REDIS_URL is set),
# an RQ worker and the web server on http://127.0.0.1:8000/ (another address: DEMO_ADDR=127.0.0.1:8001 make demo).
demo: $(VENV)/.installed
	DEBUG=$${DEBUG:-1} $(PY) manage.py demo

# Chromium and its driver for the browser tests (Debian packages).
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing chromium and chromium-driver"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	else echo "warning: no chromium/chromedriver and not root: the browser test will be skipped (sudo apt install chromium chromium-driver)" >&2; fi

# The whole suite on a throwaway PostgreSQL cluster and Redis server, started and stopped here.
test: $(VENV)/.installed browser
	DEBUG=1 bash tests/services.sh $(PY) -m pytest $(PYTEST_ARGS)

# The API fuzz run with fresh random examples, many more than the suite's repeatable run.
fuzz: $(VENV)/.installed
	API_FUZZ_EXAMPLES=$${API_FUZZ_EXAMPLES:-300} DEBUG=1 bash tests/services.sh $(PY) -m pytest tests/api/test_schema.py -q

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) var
