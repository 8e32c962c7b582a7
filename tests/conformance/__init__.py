"""Conformance: the simulator, smslink's client and Twilio's own artifacts must agree.

Twilio's official OpenAPI description and its Python SDK are the referees here; nothing in
these tests is checked against a shape the project wrote down for itself, except where the
spec is silent (error bodies), and then against Twilio's documented error shape.
"""
