# imagehop: `make demo` runs the story, `make test` runs the tests; both build on `make install`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Test processes (pytest-xdist); each gets its own block of ports and its own peers. 0 runs serially.
PYTEST_WORKERS ?= 2

.PHONY: install system-deps demo test test-fast lint bench serve clean

install: $(STAMP) system-deps

# Reinstall only when the project's metadata changed (the package itself is installed editable).
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# Debian tools the tests and the demo use (qemu-img, rclone, curl, GNU time, mke2fs/debugfs, memcached for the
# real Swift peer, gcc for the real Keystone+Glance peer's uWSGI, chromium for the console's browser tests);
# installed when missing and root.
SYSTEM_TOOLS := qemu-img:qemu-utils rclone:rclone curl:curl /usr/bin/time:time /usr/sbin/mke2fs:e2fsprogs \
	/usr/bin/memcached:memcached gcc:gcc chromium:chromium
system-deps:
	@missing=""; for pair in $(SYSTEM_TOOLS); do \
	  command -v $${pair%%:*} >/dev/null 2>&1 || missing="$$missing $${pair#*:}"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages:$$missing"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing) >/dev/null; \
	  else echo "missing Debian packages:$$missing (install them as root: apt-get install$$missing)"; fi; \
	fi

# `make demo DEMO_ARGS=--keep-serving` leaves the demo cloud running afterwards.
demo: install
	$(BIN)/imagehop demo $(DEMO_ARGS)

test: install
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile

test-fast: install
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile -m "not slow"

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

# Benchmarks against the anchors of PERFORMANCE.md; writes docs/benchmarks.md (several minutes).
bench: install
	$(BIN)/python -m bench

serve: install
	$(BIN)/imagehop serve

clean:
	rm -rf $(VENV) imagehop-data imagehop-demo .pytest_cache .ruff_cache
