"""Streamlit entry point: page navigation, wide layout and the shared sidebar filters.

Run with ``tracehouse dashboard`` (or ``streamlit run dashboard/app.py``). Pages are plain
scripts in ``dashboard/views/``; they read the filters this script keeps in session_state.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `streamlit run dashboard/app.py` puts dashboard/ on sys.path, not the repository root.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import streamlit as st  # noqa: E402

from dashboard import ui  # noqa: E402
from dashboard.login import require_access  # noqa: E402

st.set_page_config(page_title="Tracehouse", page_icon=":material/account_tree:", layout="wide")

# The default page is served at "/" and Streamlit answers its own url_path with "Page not
# found", so a bookmarked /overview would open on that dialog. The default page reserves an
# address nobody types; a hidden page at /overview forwards to it.
OVERVIEW = st.Page("views/overview.py", title="Overview", icon=":material/monitoring:", url_path="home",
                   default=True)


def _to_overview() -> None:
    st.switch_page(OVERVIEW)


PAGES = {
    "Monitor": [
        OVERVIEW,
        st.Page(_to_overview, title="Overview", url_path="overview", visibility="hidden"),
        st.Page("views/traces.py", title="Traces", icon=":material/list:", url_path="traces"),
        st.Page("views/trace.py", title="Trace detail", icon=":material/waterfall_chart:", url_path="trace"),
        st.Page("views/sessions.py", title="Sessions", icon=":material/forum:", url_path="sessions"),
    ],
    "Analyze": [
        st.Page("views/agents.py", title="Agents", icon=":material/smart_toy:", url_path="agents"),
        st.Page("views/costs.py", title="Costs", icon=":material/payments:", url_path="costs"),
        st.Page("views/anomalies.py", title="Anomalies & alerts", icon=":material/notifications_active:",
                url_path="anomalies"),
        st.Page("views/sql.py", title="SQL", icon=":material/terminal:", url_path="sql"),
    ],
}

st.markdown(ui.CSS, unsafe_allow_html=True)
st.logo(str(Path(__file__).parent / "logo.svg"), size="large")
page = st.navigation(PAGES)
if not require_access():  # the collector has keys and this session has none that works
    st.stop()
with ui.guard():
    ui.sidebar()
    page.run()
