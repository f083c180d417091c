"""FlareWatch in the Airflow UI: the emissions page and its read-only API on the api-server.

Thin on purpose: the app lives in the package (``flarewatch.web``). Mounted at ``/flarewatch``;
the page is added to the UI's navigation (it opens inside Airflow, under Airflow's login).
"""

from airflow.plugins_manager import AirflowPlugin

from flarewatch.web.app import URL_PREFIX, create_app


class FlareWatchPlugin(AirflowPlugin):
    name = "flarewatch"
    fastapi_apps = [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "FlareWatch"}]
    external_views = [{
        "name": "Emissions",
        "href": f"{URL_PREFIX}/",
        "destination": "nav",
        "url_route": "flarewatch",
        "category": "FlareWatch",
    }]
