-- reserve / reserve_all: take the first (or every) eligible agent of one queue on one PBX for a call.
-- KEYS[1]: the queue's ready set on that PBX. Returns {already_held, agent_id, endpoint, agent_id, ...}.
--
-- Eligible: the agent's hash says available, on this PBX, with a level in the required skill (0 when it
-- lacks the skill) of at least the threshold. The hash is the truth and the ready set only an index: a
-- member whose hash is gone, not available or on another PBX is removed from this set as the walk meets it.
local ready = KEYS[1]
local pbx_id = args.pbx_id
local call_id = args.call_id
local request_id = args.request_id
local now = args.now
local threshold = tonumber(args.threshold)
local skill = args.skill
local BATCH = 64
-- Agents not to take (those that just missed this call): skipped, and left in the set for other calls.
local exclude = {}
if args.exclude ~= nil and args.exclude ~= NULL then
    for _, agent_id in ipairs(args.exclude) do exclude[agent_id] = true end
end

-- A replayed reservation (the router re-processing an input after a crash: the same request id) gets the
-- agents that request took instead of taking more: otherwise the first ones would stay reserved for nobody.
-- A new request of the same call (the next attempt after a miss) is not a replay: the agent that missed may
-- still be ringing for the call until agent-state releases it, and must not be handed back.
local held = {0}
for _, agent_id in ipairs(holders(call_id)) do
    local h = redis.call('HMGET', agent_key(agent_id), 'state', 'call_id', 'pbx_id', 'endpoint', 'request')
    if (h[1] == 'reserved' or h[1] == 'ringing') and h[2] == call_id and h[3] == pbx_id
            and h[5] == request_id then
        held[1] = 1
        table.insert(held, agent_id)
        table.insert(held, h[4])
    end
end
if held[1] == 1 then
    return held
end

local taken = {0}
local limit = tonumber(args.limit)  -- 1 for reserve, 0 for "every eligible agent"
-- A script that never ends blocks every client of this Redis, so the walk ends by construction: each member
-- is looked at once at most (the budget), and every member taken or dropped leaves this set here, whatever
-- its hash says about its queues.
local budget = redis.call('ZCARD', ready)
local start = 0
while budget > 0 do
    local batch = redis.call('ZRANGE', ready, start, start + math.min(BATCH, budget) - 1)
    if #batch == 0 then break end
    budget = budget - #batch
    local removed = 0
    for _, agent_id in ipairs(batch) do
        local key = agent_key(agent_id)
        local h = redis.call('HMGET', key, 'state', 'pbx_id', 'skills', 'endpoint', 'queues', 'call_id')
        if h[1] ~= 'available' or h[2] ~= pbx_id then
            redis.call('ZREM', ready, agent_id)
            removed = removed + 1
        else
            local eligible = not exclude[agent_id]
            if eligible and skill ~= NULL then eligible = tonumber(cjson.decode(h[3])[skill] or 0) >= threshold end
            if eligible then
                redis.call('ZREM', ready, agent_id)
                leave_ready(agent_id, pbx_id, h[5])
                removed = removed + 1
                unhold(h[6], agent_id)
                hold(call_id, agent_id)
                redis.call('HSET', key, 'state', 'reserved', 'call_id', call_id, 'request', request_id,
                    'reason', '', 'since', now, 'reserved_at', now, 'last_offered', now)
                redis.call('HINCRBY', key, 'ver', 1)
                table.insert(taken, agent_id)
                table.insert(taken, h[4])
                if limit > 0 and (#taken - 1) / 2 >= limit then
                    return taken
                end
            end
        end
    end
    -- Members removed from this batch shifted the later ones down by as many ranks.
    start = start + #batch - removed
end
return taken
