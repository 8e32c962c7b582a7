# Every target sets up what it needs: a fresh machine only needs python3.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo serve test check lint bench clean messages screenshots

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	# Byte-compiled like an installed package: an editable install never writes smslink's
	# .pyc where PYTHONDONTWRITEBYTECODE is set, and each start then compiled its modules.
	$(BIN)/python -m compileall -q src/smslink
	touch $(STAMP)

# The web face's German catalogue, compiled from messages.po (the .mo is not committed).
LOCALE := src/smslink/web/locale
MO := $(LOCALE)/de/LC_MESSAGES/messages.mo

$(MO): $(LOCALE)/de/LC_MESSAGES/messages.po $(STAMP)
	$(BIN)/pybabel compile -d $(LOCALE) -D messages -l de >/dev/null

# After changing page strings: extract them all, and add the new ones to messages.po
# (untranslated, for a translator; the lint check fails until each has its German).
messages: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k say -o $(LOCALE)/messages.pot --no-location --sort-output --omit-header . >/dev/null
	$(BIN)/pybabel update -i $(LOCALE)/messages.pot -d $(LOCALE) -D messages -l de --no-fuzzy-matching --ignore-obsolete

demo: $(STAMP)
	$(BIN)/smslink demo

# The web pages on http://127.0.0.1:8000/ with the simulator and a ready 'demo' touchpoint.
serve: $(STAMP) $(MO)
	$(BIN)/smslink serve --demo

# The whole suite on every core (pytest-xdist), the 2,000-record fault runs (marker `slow`)
# included; `$(BIN)/pytest -n auto -m "not slow"` is the quick loop while developing.
test: $(STAMP) $(MO) check
	$(BIN)/pytest -n auto --dist worksteal

# What every change must keep: ruff, the layering of ARCHITECTURE.md (import-linter) and
# the types of src/ (mypy). `make test` runs these first; `make lint` adds the format check
# and the translation check (every page string marked, every one in German).
check: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/lint-imports
	$(BIN)/mypy

lint: check
	$(BIN)/ruff format --check src tests bench
	$(BIN)/pytest -p no:cacheprovider tests/web/test_translations.py

# The pages' screenshots in docs/screenshots/ (the README shows them), taken anew by the
# browser tests; a plain test run keeps its screenshots out of the tree.
screenshots: $(STAMP) $(MO)
	SMSLINK_SCREENSHOTS=1 $(BIN)/pytest -n auto -p no:cacheprovider tests/web/test_browser_*.py

bench: $(STAMP)
	$(BIN)/python bench/send_throughput.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
