"""jobqueue: a PostgreSQL-native background-job system.

The database does the work (validation, the state machine, the queue,
recovery); this package holds the runner that executes jobs, the
application client, and the command line.
"""

from .errors import (
    DatabaseError,
    InvalidParameters,
    JobNotFound,
    JobQueueError,
    LeaseLost,
    NotAllowed,
    ValidationError,
    WrongState,
)
from .handlers import Handler, HandlerRegistry, Job, default_registry, handler
from .package import package_version
from .service import JobQueueService, JobRecord

__version__ = package_version()

__all__ = [
    "DatabaseError",
    "Handler",
    "HandlerRegistry",
    "InvalidParameters",
    "Job",
    "JobNotFound",
    "JobQueueError",
    "JobQueueService",
    "JobRecord",
    "LeaseLost",
    "NotAllowed",
    "ValidationError",
    "WrongState",
    "__version__",
    "default_registry",
    "handler",
]
