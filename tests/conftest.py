"Shared pytest configuration: the `browser` marker (`make test` runs those tests in their own step)."

def pytest_configure(config):
    config.addinivalue_line('markers', 'browser: drives JupyterLab in headless Chromium (needs /usr/bin/chromium and playwright)')
