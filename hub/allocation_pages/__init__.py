"""The allocation pages: apply to a call, the proposal form, reviews, and the call managers' pages
(JupyterHub page handlers over the rules of ``hub.allocations.service``, the same as the API's)."""
