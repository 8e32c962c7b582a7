"""The concepts of smslink and their rules: plain typed code, no I/O.

Everything above (store, Twilio client, engine, application, faces) passes these values
around and asks these rules; nothing here imports from above.
"""
