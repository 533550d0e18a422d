"""The monitoring dashboard: traffic, latency, drift, live accuracy and the review queue,
read from the aggregate table alone (``streamlit run dashboard/app.py``)."""
