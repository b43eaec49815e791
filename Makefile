# scicli: two commands on a fresh machine
#   make demo   create .venv, install everything (CPU PyTorch), run simulate -> reconstruct -> evaluate
#   make test   run the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DEMO   := demo_out

.PHONY: demo test install bench clean

$(BIN)/scicli: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

install: $(BIN)/scicli

demo: install
	$(BIN)/scicli simulate sample_data/moving_camera.tif --frames 8 --mask random --seed 0 --out $(DEMO)/sim --force
	$(BIN)/scicli reconstruct $(DEMO)/sim/meas.npy --mask $(DEMO)/sim/mask.npy --method gap-tv \
		--out $(DEMO)/recon.tif --preview $(DEMO)/recon.gif --force
	$(BIN)/scicli evaluate $(DEMO)/recon.tif $(DEMO)/sim/orig.npy --report $(DEMO)/report.json --force

test: install
	$(BIN)/lint-imports
	$(BIN)/ruff check scicli
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python bench/bench_solvers.py

clean:
	rm -rf $(DEMO) .pytest_cache
