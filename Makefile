# Two entry points that work on a fresh machine: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: setup browser messages run test lint bench simulate clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[train,dev]'
	touch $(STAMP)

setup: $(STAMP)

# Debian's Chromium and CJK fonts for the browser tests (Playwright's own download does not work offline).
browser:
	@command -v chromium >/dev/null && fc-list 2>/dev/null | grep -qi "noto.*cjk" || \
		(apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium fonts-noto-cjk)

# GNU gettext's msgfmt compiles the UI's Chinese translations (frontend/locale, .po -> .mo).
# The .mo files are committed (a checkout serves the Chinese UI without gettext): after
# editing a .po, run this and commit both; a test checks they agree.
messages: setup
	@command -v msgfmt >/dev/null || \
		(apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q gettext)
	cd frontend && SECRET_KEY=$${SECRET_KEY:-build-only-secret} ../$(BIN)/python ../manage.py compilemessages -v0

run: setup
	DEBUG=$${DEBUG:-1} $(BIN)/python manage.py run_embedded

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: setup browser messages lint
	SECRET_KEY=$${SECRET_KEY:-test-only-secret} $(BIN)/python manage.py makemigrations --check --dry-run
	SECRET_KEY=$${SECRET_KEY:-test-only-secret} $(BIN)/pytest $(PYTEST_ARGS)

bench: setup
	DEBUG=1 $(BIN)/python -m bench.engine
	DEBUG=1 $(BIN)/python -m bench.platform
	DEBUG=1 $(BIN)/python -m bench.selection
	DEBUG=1 $(BIN)/python -m bench.retraining

# The active-learning target table (docs/active_learning.md): CLUENER2020 and Resume, 3 repeats.
simulate: setup
	DEBUG=1 $(BIN)/python manage.py simulate_al --corpus cluener --corpus resume --repeats 3 \
		--jobs 2 --out bench/results/simulate_al

clean:
	rm -rf $(VENV) var bench/results
