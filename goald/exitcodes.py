"""goald's exit codes (docs/operations.md lists them for operators and systemd units)."""

OK = 0
CHECK_FAILED = 1        # a check ran and found problems (validate-migrations, check-db-capacity)
CONFIG = 2              # bad command line or configuration: nothing was started
DATABASE = 3            # the database could not be reached or the embedded one not started
MIGRATION = 4           # a migration failed
STARTUP = 5             # another start-up step failed (e.g. the console port is in use)
ESCALATED = 6           # the root supervisor gave up (a crash storm): systemd restarts goald
INTERNAL = 70           # a bug: an unexpected exception (EX_SOFTWARE)

DESCRIPTIONS = {
    OK: "success",
    CHECK_FAILED: "a check ran and reported problems (validate-migrations, check-db-capacity)",
    CONFIG: "bad command line or configuration; nothing was started",
    DATABASE: "the database could not be reached, or the embedded PostgreSQL did not start",
    MIGRATION: "a migration failed; the message names file and line",
    STARTUP: "another start-up step failed (for example the console port is in use)",
    ESCALATED: "a crash storm: an actor kept crashing past its restart budget, up to the root supervisor; "
               "restart the process (systemd does) and read the log for the actor that kept crashing",
    INTERNAL: "unexpected internal error (a bug: please report it with the log)",
}
