-- counts: how many of a PBX's agents serving one queue are in each state, and the ready set's size.
-- KEYS[1]: the PBX's agent index; KEYS[2]: the queue's ready set on that PBX. Writes nothing.
-- Returns {ready size, state, count, state, count, ...}.
local by_state = {}
for _, agent_id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
    local h = redis.call('HMGET', agent_key(agent_id), 'state', 'queues')
    if h[1] and cjson.decode(h[2])[args.queue_id] ~= nil then
        by_state[h[1]] = (by_state[h[1]] or 0) + 1
    end
end
local out = {redis.call('ZCARD', KEYS[2])}
for state, count in pairs(by_state) do
    table.insert(out, state)
    table.insert(out, count)
end
return out
