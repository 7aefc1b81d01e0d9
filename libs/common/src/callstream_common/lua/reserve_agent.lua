-- reserve_agent: take one named agent for a call (a direct call, a transfer to an extension), if available
-- on this PBX. KEYS[1]: the agent's hash. Returns {already_held, agent_id, endpoint} or {0} when not taken.
-- Idempotent per request as reserve is: if this request already took a reserved or ringing agent for the
-- call, that one is returned (a router re-processing an input after a crash gets the same answer).
local key = KEYS[1]
local agent_id = args.agent_id
local pbx_id = args.pbx_id
local call_id = args.call_id
local request_id = args.request_id
local now = args.now

for _, held_id in ipairs(holders(call_id)) do
    local h = redis.call('HMGET', agent_key(held_id), 'state', 'call_id', 'pbx_id', 'endpoint', 'request')
    if (h[1] == 'reserved' or h[1] == 'ringing') and h[2] == call_id and h[3] == pbx_id
            and h[5] == request_id then
        return {1, held_id, h[4]}
    end
end

local h = redis.call('HMGET', key, 'state', 'pbx_id', 'endpoint', 'queues', 'call_id')
if h[1] ~= 'available' or h[2] ~= pbx_id then
    return {0}
end
leave_ready(agent_id, pbx_id, h[4])
unhold(h[5], agent_id)
hold(call_id, agent_id)
redis.call('HSET', key, 'state', 'reserved', 'call_id', call_id, 'request', request_id, 'reason', '',
    'since', now, 'reserved_at', now, 'last_offered', now)
redis.call('HINCRBY', key, 'ver', 1)
return {0, agent_id, h[3]}
