"""Dashboard login: when the collector has API keys, ask for a read key once per browser session.

The key is kept in this session's state only (never on disk, never shared with other sessions);
the collector then shows this session the key's project and nothing else.
"""

from __future__ import annotations

import streamlit as st

from dashboard import client


def require_access() -> bool:
    """True when the collector answers this session; otherwise show the login form (False)."""
    try:
        client.check_access()
        return True
    except client.Unauthorized as exc:
        reason = str(exc)
    except client.ApiError:
        return True  # collector down etc.: the page says so itself
    st.title("Tracehouse")
    if st.session_state.get("api_key"):
        st.error(f"That key was not accepted: {reason}", icon=":material/key_off:")
    else:
        st.info("This collector needs an API key: a read key of your project (`tracehouse keys create --kind read --project NAME`) or an admin key, which sees every project.", icon=":material/key:")
    with st.form("login"):
        key = st.text_input("API key (read or admin)", type="password", placeholder="th_read_...")
        if st.form_submit_button("Sign in", type="primary"):
            st.session_state["api_key"] = key.strip()
            st.rerun()
    return False
