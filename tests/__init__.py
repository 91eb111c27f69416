"""pytest harness for the langflow-platform charts."""
