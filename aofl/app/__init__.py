"""The Streamlit side of AO-FL Explorer (the only part of aofl that imports streamlit).

context   the sidebar's selection (Context) and the session keys behind it; stop-with-a-message helpers
caches    st.cache_* loaders: datasets, models, inference results (Selection), metrics, embeddings
figures   the pages' figures and frames, cached by what they are made from (Selection + widget values)
widgets   show_figure (the one way pages draw a figure), CSV downloads, the modality what-if
files     the sidebar's "Load a checkpoint file"
link      the app's links (read, publish, share box); url_state: their rules, no Streamlit
apptest   the app under streamlit.testing's AppTest as a server runs it (for aofl.bench.pages)
internals every use of Streamlit's private internals (legacy pages mode, AppTest), guarded
"""
