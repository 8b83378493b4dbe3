"""The AWS wing on the Slack and terminal side: status, cost, savings and their views.

`listeners` answers `/agent aws …` and the Create-action button; `status` and `cost`
acknowledge and enqueue; `status_blocks` and `cost_blocks` build the Block Kit views;
`terminal` is `agentbot aws status` in the foreground.
"""
