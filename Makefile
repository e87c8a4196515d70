# Set-up is part of every target: a fresh clone needs only `make demo` or `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
LOCAL_ENV = eval "$$($(BIN)/logins-pipeline env)"
UI_PORT ?= 3000
# Root installs Debian packages directly; anyone else through sudo.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install lock image browser up demo dev screenshot lint test test-fast chaos bench bench-analytics bench-stream bench-hostile bench-retention breaks-erasure down clean

# checkov (the security scanner of `make lint`) pins boto3, policy_sentry and packaging below the project's
# own pins, so it lives in a venv of its own, named by its version.
CHECKOV_VERSION := 3.3.30
CHECKOV := .local/checkov-$(CHECKOV_VERSION)/bin/checkov
CHECKOV_FLAGS := --quiet --compact --skip-download

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[local,k8s,test,lint]'
	touch $@

$(CHECKOV):
	$(PYTHON) -m venv $(dir $(@D))
	$(dir $(@D))bin/pip install --quiet checkov==$(CHECKOV_VERSION)

install: $(INSTALLED) $(CHECKOV)

# requirements.lock, the image's dependencies with their hashes: [project.dependencies], the k8s extra and the
# build backend, resolved for Linux and Python 3.11 (the image's). Rerun after changing any of them: a unit
# test (test_image_lock.py) fails while pyproject.toml and the lock disagree.
lock: install
	$(BIN)/python -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"], sep="\n")' \
		| $(BIN)/uv pip compile --quiet pyproject.toml - --extra k8s --generate-hashes --python-version 3.11 \
			--python-platform linux --custom-compile-command "make lock" --output-file requirements.lock

# The production image, logins-pipeline:local, with docker when its daemon answers, else with podman (and then
# on a Python base made from Debian's packages, as no registry is reachable here; BASE_IMAGE=default for the
# Dockerfile's). Prints its size and build time. For ECS: RDS_CA_BUNDLE=<file> RDS_CA_BUNDLE_SHA256=<sha256>.
image: install
	$(BIN)/python -m logins_pipeline_tests.image $(if $(BASE_IMAGE),--base $(BASE_IMAGE)) \
		$(if $(RDS_CA_BUNDLE),--rds-ca-bundle $(RDS_CA_BUNDLE) --rds-ca-sha256 $(RDS_CA_BUNDLE_SHA256))

# Debian's Chromium, driven by Playwright in the browser tests and `make screenshot` (a no-op once installed).
browser:
	@[ -x /usr/bin/chromium ] || { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		$(SUDO) apt-get install -y -qq --no-install-recommends chromium fonts-liberation fonts-dejavu-core; }

# Local SQS (LocalStack on the host, in its own Python 3.13 venv) + Postgres 16 (pgserver's binaries).
up: install
	$(BIN)/logins-pipeline up

# The main job on the local services: reset the demo data, seed the sample (spread over the last 3 days),
# run once, compute each day's analytics and print their figures, show the result.
demo: up
	$(LOCAL_ENV) && $(BIN)/logins-pipeline reset --yes
	$(LOCAL_ENV) && $(BIN)/logins-pipeline seed --days 3
	$(LOCAL_ENV) && $(BIN)/logins-pipeline run
	$(LOCAL_ENV) && $(BIN)/logins-pipeline analytics
	$(LOCAL_ENV) && $(BIN)/logins-pipeline status

# The Dagster UI and daemon (sensor running) on http://127.0.0.1:$(UI_PORT), against the same local services.
# `exec`: make passes a SIGTERM on to dg itself, which stops the webserver, daemon and code servers it started.
dev: up
	$(LOCAL_ENV) && exec $(BIN)/dg dev -h 127.0.0.1 -p $(UI_PORT)

# docs/lineage.png: the asset lineage in the Dagster UI on the local services, from headless Chromium.
screenshot: up browser
	$(LOCAL_ENV) && $(BIN)/python scripts/screenshot.py docs/lineage.png

# Lint and format (ruff), types (mypy: strict on core/ and resources/) and the import layers (import-linter),
# all configured in pyproject.toml; then the deployables: cfn-lint on the CloudFormation templates, checkov
# on deploy/ (CloudFormation, and Kubernetes manifests if any) and on the Dockerfile, and hadolint on the
# Dockerfile. A check skipped is skipped inline, beside its resource, with the reason.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/cfn-lint deploy/cloudformation/*.yaml
	$(CHECKOV) $(CHECKOV_FLAGS) --framework cloudformation kubernetes -d deploy
	$(CHECKOV) $(CHECKOV_FLAGS) --framework dockerfile -f Dockerfile
	$(BIN)/hadolint Dockerfile

# The CI command: lint, then the whole suite in two processes (it mostly waits: visibility timeouts, latency,
# Dagster's daemons); each process's fixtures start their own Postgres and SQS server on free loopback ports.
test: lint browser
	$(BIN)/python -m pytest -n 2 --dist worksteal

# The quick loop: unit tests and the pure core, no services (about 40 s here; only unit/ is imported). For the
# integration tests without the slowest ones (Dagster processes, fault trials, the browser): pytest -m "not slow".
test-fast: install
	$(BIN)/python -m pytest logins_pipeline_tests/unit -m "not integration" -q -n 2

# Real faults, many times over, on services of its own: kill -9 at three points of a run, SIGTERM, Postgres
# stopped, a poison message, parallel runs. Prints fault point, trials, lost, duplicated, left in queue.
# TRIALS=N for N trials per crash point (default 10); ONLY=TEXT for the scenarios whose name starts with TEXT.
chaos: install
	$(BIN)/python -m logins_pipeline_tests.chaos --trials $(or $(TRIALS),10) $(if $(ONLY),--only "$(ONLY)")

# Benchmarks against the baselines, on their own services; writes docs/benchmarks.md: the drain (LocalStack
# and AWS-like SQS through the harness; about 30 minutes here), then analytics, streams and hostile input (below).
bench: install bench-analytics bench-stream bench-hostile
	PYTHONPATH=. $(BIN)/python benchmarks/bench.py --write docs/benchmarks.md

# Steady streams of 100 logins a second (LocalStack) and 1,000 (fauxqs, npm-installed into .local/: LocalStack
# cannot take that rate here) for 2 minutes each, drained by the sensor's runs (webserver and daemon on a
# Postgres instance, its own services): send->commit delay p50/p95/p99/max, the first login after an idle
# queue, exactly-once, API calls per message; writes docs/benchmarks.md (its stream-bench markers).
bench-stream: install
	PYTHONPATH=. $(BIN)/python benchmarks/stream_bench.py --write docs/benchmarks.md

# One day's analytics partition over 1,000,000 rows (target < 10 s), on a Postgres of its own; writes the
# figures and the query plans to docs/benchmarks.md (between its analytics-bench markers). A few minutes.
bench-analytics: install
	$(BIN)/python benchmarks/analytics_bench.py --write docs/benchmarks.md

# What one hostile message costs: quarantining a 256 KiB body of each shape (target < 1 s) and redacting 1 MiB
# of hostile text; writes the table to docs/benchmarks.md (between its hostile-bench markers). Seconds.
bench-hostile: install
	PYTHONPATH=. $(BIN)/python benchmarks/hostile_bench.py --write docs/benchmarks.md

# A year of history, not part of `make bench` (it needs about 20 GiB of disk, and most of its time is the seeding):
# the drain's core path into a user_logins of 50,000,000 rows over 365 day partitions beside the same into an
# empty one (target >= 0.9x), a day's analytics with and without that history (within 10%), and a retention pass
# dropping 30 of the 365 days (< 5 s), on a Postgres of its own; writes docs/benchmarks.md (its retention-bench
# markers). ROWS=N for a smaller history.
bench-retention: install
	PYTHONPATH=. nice -n 5 $(BIN)/python benchmarks/retention_bench.py $(if $(ROWS),--rows $(ROWS)) \
		--write docs/benchmarks.md

# Each step of the erasure removed from the code in turn, and its tests run (edits the tree: a clean checkout).
breaks-erasure: install
	PYTHONPATH=benchmarks nice -n 5 $(BIN)/python scripts/erasure_breaks.py --write docs/privacy.md

down:
	@if [ -x $(BIN)/logins-pipeline ]; then $(BIN)/logins-pipeline down; fi

clean: down
	rm -rf $(VENV) .local
