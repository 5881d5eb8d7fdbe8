"""Talk-script library (话术库): private replies, community posts, Moments science posts, campaign copy.

Scripts go through medical review before agents see them; every save runs the
advertising-law compliance linter (``content.scripts.domain.compliance``).
"""
