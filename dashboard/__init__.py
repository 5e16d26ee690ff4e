"""The Dash dashboard, its JSON API, login and security headers.

Errors (one tree, under the project-wide base)::

    ChairsideError                          monitor.errors
    └── DashboardError                      dashboard.errors
        ├── ApiError                        dashboard.api_support: an API request refused (status, message)
        ├── BadNext (+ValueError)           dashboard.login_pages: an unsafe post-login redirect
        └── BindRefused (+ValueError)       dashboard.security: an unsafe listen address
"""

__all__: list[str] = []  # the package's modules are imported by name
