"""Real-browser tests: JupyterLab and Notebook 7 on 127.0.0.1, driven by Playwright on the system Chromium."""
