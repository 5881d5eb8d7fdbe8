"""Every package's tables, imported so ``Base.metadata`` is complete.

Add a package's models module here when it declares tables.
"""

from clinical_core.persistence import models as clinical_core_models  # noqa: F401
from clinical_core.persistence.base import Base

metadata = Base.metadata
from knowledge_base.persistence import models as knowledge_base_models  # noqa: F401,E402
from content.scripts import models as content_scripts_models  # noqa: F401,E402
