# Two commands: `make demo` runs the platform with the demo city, `make test` runs every test.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
WEB := services/gateway/web
ASSETS := $(WEB)/node_modules/.installed

.PHONY: demo test lint bench reset clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The dashboard's scripts (ECharts, Swagger UI, the AsyncAPI viewer) from the npm registry, pinned by the lockfile.
$(ASSETS): $(WEB)/package-lock.json
	npm ci --prefix $(WEB) --no-audit --no-fund --loglevel=error
	touch $(ASSETS)

demo: $(STAMP) $(ASSETS)
	$(BIN)/gongdi up --seed $(if $(RESET),--reset --yes,)

test: $(STAMP) $(ASSETS)
	$(BIN)/ruff check .
	$(BIN)/pytest -q --durations=25

bench: $(STAMP)
	$(BIN)/python -m bench

reset: $(STAMP)
	$(BIN)/gongdi reset

clean:
	rm -rf $(VENV) .gongdi
