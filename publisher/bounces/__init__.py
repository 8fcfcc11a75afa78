"""Deliverability (issue 13): the bounce address and VERP (``verp``), reading bounce and complaint mail
(``classify``, ``sources``, ``process``), the bounce settings (``settings``) and the in-run guard (``guard``).

The suppression rules themselves live with the subscriber list (``publisher.subscribers``): this package
decides what a message says, the list decides what that means for an address.
"""
