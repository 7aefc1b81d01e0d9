-- snapshot / get: agents' hashes read at one instant, each with the queues whose ready set holds it.
-- KEYS[1]: a PBX's agent index, read when args.agent_ids is null. Writes nothing.
-- Returns {{agent_id, {field, value, ...}, {queue_id, ...}}, ...}; agents without a hash are left out.
local ids = args.agent_ids
if ids == NULL then ids = redis.call('SMEMBERS', KEYS[1]) end
local out = {}
for _, agent_id in ipairs(ids) do
    local fields = redis.call('HGETALL', agent_key(agent_id))
    if #fields > 0 then
        local h = {}
        for i = 1, #fields, 2 do h[fields[i]] = fields[i + 1] end
        local ready_in = {}
        for queue_id, _ in pairs(cjson.decode(h.queues)) do
            if redis.call('ZSCORE', ready_key(h.pbx_id, queue_id), agent_id) then
                table.insert(ready_in, queue_id)
            end
        end
        table.insert(out, {agent_id, fields, ready_in})
    end
end
return out
