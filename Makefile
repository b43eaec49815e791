# scicli: two commands on a fresh machine
#   make demo   create .venv, install everything (CPU PyTorch), reconstruct the sample with gap-tv and
#               pnp-gap / FFDNet, print both scores, write demo_out/compare.png (about a minute)
#   make test   run the test suite and build the documentation (mkdocs --strict)
#   make docs   build the documentation site into site/ (offline)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DEMO   := demo_out

.PHONY: demo test install bench docs clean

$(BIN)/scicli: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[test,docs]"
	touch $@

install: $(BIN)/scicli

demo: install
	$(BIN)/scicli simulate sample_data/moving_camera.tif --frames 8 --mask random --seed 0 --out $(DEMO)/sim --force
	$(BIN)/scicli reconstruct $(DEMO)/sim/meas.npy --mask $(DEMO)/sim/mask.npy --gt $(DEMO)/sim/orig.npy \
		--method gap-tv --out $(DEMO)/gap-tv.tif --plot $(DEMO)/plots --force --quiet
	$(BIN)/scicli reconstruct $(DEMO)/sim/meas.npy --mask $(DEMO)/sim/mask.npy --gt $(DEMO)/sim/orig.npy \
		--method pnp-gap --denoiser ffdnet --x0 $(DEMO)/gap-tv.tif --sigma 25,12,6 --iters 8,8,8 \
		--out $(DEMO)/pnp-gap.tif --plot $(DEMO)/plots --force --quiet
	$(BIN)/python bench/compare.py $(DEMO)/sim/orig.npy gap-tv=$(DEMO)/gap-tv.tif pnp-gap/ffdnet=$(DEMO)/pnp-gap.tif \
		--out $(DEMO)/compare.png --frames 3,12 --title "sample video, 2 snapshots of 8 frames" --force

test: install
	$(BIN)/lint-imports
	$(BIN)/ruff check scicli
	$(BIN)/python -m pytest
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir build/site

docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

bench: install
	$(BIN)/python bench/bench_solvers.py

clean:
	rm -rf $(DEMO) .pytest_cache site build/site
