"""The moderators' web app (Streamlit). It talks to the moderation API over HTTP only."""
