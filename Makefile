# Entry points. Every target sets up .venv first (idempotent, seconds when nothing changed).
#   make demo   closed-loop MuJoCo simulation driven by a policy over real ROS 2 topics
#   make test   the test suite (what CI runs)
#   make bench  the benchmark scripts
VENV ?= .venv
PY := $(VENV)/bin/python
export HF_HUB_OFFLINE ?= 1
export MUJOCO_GL ?= egl
export PYTHONUNBUFFERED := 1
export AMENT_PREFIX_PATH := $(abspath $(VENV))$(if $(AMENT_PREFIX_PATH),:$(AMENT_PREFIX_PATH))

.PHONY: setup test demo bench clean

setup:
	@bash scripts/setup_venv.sh

test: setup
	$(PY) -m pytest test -ra $(PYTEST_ARGS)

demo: setup
	$(VENV)/bin/so100_demo $(DEMO_ARGS)

bench: setup
	@for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) build install log out .pytest_cache
