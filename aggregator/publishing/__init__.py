"""The publishing stage: which stories each output holds, their representative, archive pages,
the rendered documents in every format and coding, and WebSub pings.
"""
