-- `make bench` order workload: moves (POST .../move after a random sibling) or PATCHes of random tasks of one
-- sibling group. args: mode ("move" | "patch"), a file whose first line is the tasks' path prefix
-- (/users/<id>/tasks/) and whose other lines are the group's task ids.
local ids, prefix, mode = {}, nil, nil
local JSON = { ["Content-Type"] = "application/json" }

function init(args)
  mode = args[1]
  for line in io.lines(args[2]) do
    if prefix == nil then prefix = line else ids[#ids + 1] = line end
  end
end

function request()
  local task = ids[math.random(#ids)]
  if mode == "move" then
    local after = ids[math.random(#ids)]
    while after == task do after = ids[math.random(#ids)] end
    return wrk.format("POST", prefix .. task .. "/move", JSON, '{"after_id":"' .. after .. '"}')
  end
  return wrk.format("PATCH", prefix .. task, JSON, string.format('{"title":"Renamed %d"}', math.random(1000000)))
end
