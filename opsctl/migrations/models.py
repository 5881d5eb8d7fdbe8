"""Every package's tables, imported so ``Base.metadata`` is complete.

Add a package's models module here when it declares tables.
"""

from campaigns.persistence import models as campaigns_models  # noqa: F401
from campaigns.persistence import pushes as campaigns_pushes  # noqa: F401
from clinical_core.persistence import consultation as clinical_core_consultation  # noqa: F401
from clinical_core.persistence import his as clinical_core_his  # noqa: F401
from clinical_core.persistence import his_rx as clinical_core_his_rx  # noqa: F401
from clinical_core.persistence import models as clinical_core_models  # noqa: F401
from clinical_core.persistence import nursing as clinical_core_nursing  # noqa: F401
from clinical_core.persistence import prescription as clinical_core_prescription  # noqa: F401
from clinical_core.persistence import his_schedule as clinical_core_his_schedule  # noqa: F401
from clinical_core.persistence import video as clinical_core_video  # noqa: F401
from clinical_core.persistence.base import Base
from content.persistence import models as content_models  # noqa: F401

metadata = Base.metadata
from knowledge_base.persistence import models as knowledge_base_models  # noqa: F401,E402
from content.scripts import models as content_scripts_models  # noqa: F401,E402
from jobs.persistence import models as jobs_models  # noqa: F401,E402
from campaigns.persistence import followup as campaigns_followup  # noqa: F401,E402
