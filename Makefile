# The two commands a new machine needs:
#   make up      venv + install + build models + index the catalogue + serve   (the main job)
#   make test    lint, types, proto drift check and the test suite              (what CI runs)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATA_DIR ?= .shoprank
ESCI := ../shared/data/esci/products.ndjson
CATALOGUE ?= $(if $(wildcard $(ESCI)),$(ESCI),)
EXTRAS ?= cpu,train,eval,dev
SHOPRANK := $(BIN)/shoprank --data-dir $(DATA_DIR)

.PHONY: up setup models index reindex serve opensearch plugin java-test test test-fast lint openapi docs clean

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[$(EXTRAS)]'
	touch $@

setup: $(VENV)/.installed

$(DATA_DIR)/models/cross-encoder/model.json: | setup
	$(SHOPRANK) models build

models: $(DATA_DIR)/models/cross-encoder/model.json

$(DATA_DIR)/lancedb/products.alias.json: | models
	@test -n "$(CATALOGUE)" || { echo "no catalogue: run 'make up CATALOGUE=path/to/products.ndjson|jsonl|csv|parquet'"; exit 2; }
	$(SHOPRANK) index --catalogue $(CATALOGUE)

index: $(DATA_DIR)/lancedb/products.alias.json

reindex: models
	@test -n "$(CATALOGUE)" || { echo "no catalogue: pass CATALOGUE=path"; exit 2; }
	$(SHOPRANK) index --catalogue $(CATALOGUE)

serve: index
	$(SHOPRANK) serve

up: serve

# A local single-node OpenSearch (JDK 17+ and Maven; 127.0.0.1 only, no security plugin), e.g.
# make opensearch OPENSEARCH_ARGS="--http-port 9201 --heap 512m"
opensearch: setup
	$(SHOPRANK) opensearch run $(OPENSEARCH_ARGS)

# The shoprank OpenSearch plugin: JUnit tests, then the zip `bin/opensearch-plugin install` takes.
PLUGIN_ZIP := opensearch/plugin/target/shoprank-opensearch-plugin.zip
plugin:
	mvn -q -B -f opensearch/plugin/pom.xml verify
	@echo "built $(PLUGIN_ZIP): bin/opensearch-plugin install file://$(CURDIR)/$(PLUGIN_ZIP)"

# The plugin's JUnit tests (skipped, with the reason, without a JDK and Maven).
java-test:
	@if command -v java >/dev/null 2>&1 && command -v mvn >/dev/null 2>&1; then \
	  mvn -q -B -f opensearch/plugin/pom.xml verify && echo "plugin JUnit tests passed"; \
	else echo "SKIPPED plugin JUnit tests: no java/mvn on PATH (a JDK 17+ and Maven build the OpenSearch plugin)"; fi

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(BIN)/lint-imports
	$(BIN)/python proto/generate.py --check

# The full suite, slow tests included (bare `pytest` leaves them out).
test: lint java-test
	$(BIN)/pytest -m 'slow or not slow'

# The unit tier only: no models, no sockets (tests/tiers.py).
test-fast: setup
	$(BIN)/pytest -m unit

# The HTTP API's OpenAPI document, checked in (tests/frontdoor/test_openapi.py fails when it is stale).
openapi: setup
	$(BIN)/shoprank openapi

# The measured figures' tables in docs/quality.md and docs/benchmarks.md, from docs/results/*.json.
docs: openapi
	$(BIN)/shoprank docs

clean:
	rm -rf $(DATA_DIR)
