// Command argocd-health runs an Argo CD health script the way the Argo CD application controller runs it, and prints
// the result as JSON, like argocd/run_health.lua does for Lua 5.1:
//
//	argocd-health [-open-libs] HEALTH.lua OBJECT.json   →   {"status":"Healthy","message":"..."}
//
// What it reproduces, from Argo CD's util/lua (lua.go, oslib_safe.go, health_checks.go) and the gopher-json version
// Argo CD pins (layeh.com/gopher-json 97fed8db); the code here is our own:
//
//   - The interpreter is gopher-lua (github.com/yuin/gopher-lua) v1.1.2, the version Argo CD ships, pinned by
//     go.mod and go.sum beside this file.
//   - Libraries. A script from argocd-cm (resource.customizations.health.<group>_<kind>, how our users install ours)
//     runs with useOpenLibs false by default: the state is made with SkipOpenLibs and then only these are opened:
//     package (require), the base functions, table, and an "os" holding only time and date (also preloaded, so
//     require("os") works). No string, math, io, debug, coroutine or channel library. Scripts built into Argo CD's
//     resource_customizations, and argocd-cm entries with useOpenLibs: true, get every library (-open-libs).
//   - The object. Argo CD hands the live object (unstructured, from the API server's JSON) to the script as the
//     global `obj`: JSON integers arrive as int64 and other numbers as float64, both become Lua numbers (float64);
//     strings and booleans map directly; arrays become tables filled with Append from index 1; objects become
//     tables filled with RawSetH, so a JSON null member is simply absent (nil) and an empty object and an empty
//     array are both an empty table.
//   - The run: at most 1 second (a context deadline on the state); the script's last return value is the result.
//     It must be a table, else the assessment fails ("expect table output from Lua script, not <type>").
//   - The result: the table is encoded to JSON with gopher-json's rules (string keys → object; keys 1..n in order →
//     array, so an empty table is "[]"; mixed or sparse keys, functions, userdata → an error), then decoded with
//     encoding/json into {status, message} (so key matching is case-insensitive and a non-string status or message
//     is an error). A status outside Healthy, Progressing, Degraded, Suspended, Missing, Unknown becomes
//     {Unknown, "Lua returned an invalid health status"}.
//
// An assessment that fails (a Lua error, a wrong return) exits with status 1 and the error on stderr: in Argo CD the
// resource's health would be an error, not a status.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
)

type healthStatus struct {
	Status  string `json:"status,omitempty"`
	Message string `json:"message,omitempty"`
}

var validStatus = map[string]bool{
	"Healthy": true, "Progressing": true, "Degraded": true, "Suspended": true, "Missing": true, "Unknown": true,
}

func main() {
	openLibs := flag.Bool("open-libs", false, "open every standard library (Argo CD's built-in scripts, useOpenLibs: true)")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: argocd-health [-open-libs] HEALTH.lua OBJECT.json")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 2 {
		flag.Usage()
		os.Exit(2)
	}
	script, err := os.ReadFile(flag.Arg(0))
	if err != nil {
		fail(err)
	}
	object, err := readObject(flag.Arg(1))
	if err != nil {
		fail(fmt.Errorf("cannot decode %s: %w", flag.Arg(1), err))
	}
	hs, err := assess(string(script), object, *openLibs)
	if err != nil {
		fail(err)
	}
	out, err := json.Marshal(hs)
	if err != nil {
		fail(err)
	}
	os.Stdout.Write(out)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "argocd-health:", err)
	os.Exit(1)
}

// readObject decodes a JSON object the way Kubernetes' unstructured decoding does: integers as int64, other
// numbers as float64.
func readObject(path string) (map[string]interface{}, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v interface{}
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after the object")
	}
	obj, ok := numbers(v).(map[string]interface{})
	if !ok {
		return nil, errors.New("not a JSON object")
	}
	return obj, nil
}

func numbers(v interface{}) interface{} {
	switch t := v.(type) {
	case json.Number:
		if i, err := strconv.ParseInt(string(t), 10, 64); err == nil {
			return i
		}
		f, _ := strconv.ParseFloat(string(t), 64)
		return f
	case []interface{}:
		for i := range t {
			t[i] = numbers(t[i])
		}
	case map[string]interface{}:
		for k := range t {
			t[k] = numbers(t[k])
		}
	}
	return v
}

// toLua turns a decoded JSON value into the Lua value a health script sees.
func toLua(L *lua.LState, v interface{}) lua.LValue {
	switch t := v.(type) {
	case nil:
		return lua.LNil
	case bool:
		return lua.LBool(t)
	case string:
		return lua.LString(t)
	case int64:
		return lua.LNumber(t)
	case float64:
		return lua.LNumber(t)
	case []interface{}:
		tbl := L.CreateTable(len(t), 0)
		for _, item := range t {
			tbl.Append(toLua(L, item))
		}
		return tbl
	case map[string]interface{}:
		tbl := L.CreateTable(0, len(t))
		for k, item := range t {
			tbl.RawSetH(lua.LString(k), toLua(L, item))
		}
		return tbl
	}
	return lua.LNil
}

func assess(script string, object map[string]interface{}, openLibs bool) (*healthStatus, error) {
	L := lua.NewState(lua.Options{SkipOpenLibs: !openLibs})
	defer L.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		{lua.OsLibName, openRestrictedOs},
	} {
		if err := L.CallByParam(lua.P{Fn: L.NewFunction(lib.open), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			return nil, fmt.Errorf("opening library %q: %w", lib.name, err)
		}
	}
	L.PreloadModule(lua.OsLibName, func(L *lua.LState) int {
		L.Push(L.SetFuncs(L.NewTable(), restrictedOs))
		return 1
	})

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	L.SetContext(ctx)
	L.SetGlobal("obj", toLua(L, object))
	if err := L.DoString(script); err != nil {
		return nil, err
	}
	ret := L.Get(-1)
	if ret.Type() != lua.LTTable {
		return nil, fmt.Errorf("expect table output from Lua script, not %s", ret.Type().String())
	}
	encoded, err := encodeJSON(ret)
	if err != nil {
		return nil, err
	}
	hs := &healthStatus{}
	if err := json.Unmarshal(encoded, hs); err != nil {
		return nil, err
	}
	if !validStatus[hs.Status] {
		return &healthStatus{Status: "Unknown", Message: "Lua returned an invalid health status"}, nil
	}
	return hs, nil
}

// The os library a restricted script gets: time and date only.
var restrictedOs = map[string]lua.LGFunction{"time": osTime, "date": osDate}

func openRestrictedOs(L *lua.LState) int {
	L.Push(L.RegisterModule(lua.OsLibName, restrictedOs))
	return 1
}

func osTime(L *lua.LState) int {
	if L.GetTop() == 0 {
		L.Push(lua.LNumber(time.Now().Unix()))
		return 1
	}
	tbl := L.CheckTable(1)
	field := func(name string, def int) int {
		if n, ok := tbl.RawGetString(name).(lua.LNumber); ok {
			return int(n)
		}
		return def
	}
	t := time.Date(field("year", -1), time.Month(field("month", -1)), field("day", -1),
		field("hour", 12), field("min", 0), field("sec", 0), 0, time.Local)
	L.Push(lua.LNumber(t.Unix()))
	return 1
}

func osDate(L *lua.LState) int {
	t := time.Now()
	format := "%c"
	if L.GetTop() >= 1 {
		format = L.CheckString(1)
	}
	if strings.HasPrefix(format, "!") {
		t = t.UTC()
		format = format[1:]
	}
	if L.GetTop() >= 2 {
		t = time.Unix(L.CheckInt64(2), 0)
	}
	if strings.HasPrefix(format, "*t") {
		tbl := L.NewTable()
		for k, v := range map[string]int{"year": t.Year(), "month": int(t.Month()), "day": t.Day(), "hour": t.Hour(),
			"min": t.Minute(), "sec": t.Second(), "wday": int(t.Weekday()) + 1, "yday": 0} {
			tbl.RawSetString(k, lua.LNumber(v))
		}
		tbl.RawSetString("isdst", lua.LFalse)
		L.Push(tbl)
		return 1
	}
	layouts := map[byte]string{'a': "Mon", 'A': "Monday", 'b': "Jan", 'B': "January", 'c': "02 Jan 06 15:04 MST",
		'd': "02", 'F': "2006-01-02", 'H': "15", 'I': "03", 'm': "01", 'M': "04", 'p': "PM", 'S': "05",
		'X': "15:04:05", 'y': "06", 'Y': "2006", 'z': "-0700", 'Z': "MST"}
	var b strings.Builder
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c != '%' || i+1 == len(format) {
			b.WriteByte(c)
			continue
		}
		i++
		if layout, ok := layouts[format[i]]; ok {
			b.WriteString(t.Format(layout))
		} else if format[i] == '%' {
			b.WriteByte('%')
		} else {
			b.WriteByte('%')
			b.WriteByte(format[i])
		}
	}
	L.Push(lua.LString(b.String()))
	return 1
}

// encodeJSON encodes a Lua value with the rules of the gopher-json version Argo CD uses.
func encodeJSON(v lua.LValue) ([]byte, error) {
	return encodeValue(v, map[*lua.LTable]bool{})
}

func encodeValue(v lua.LValue, visiting map[*lua.LTable]bool) ([]byte, error) {
	switch t := v.(type) {
	case *lua.LNilType:
		return []byte("null"), nil
	case lua.LBool:
		return json.Marshal(bool(t))
	case lua.LNumber:
		return json.Marshal(float64(t))
	case lua.LString:
		return json.Marshal(string(t))
	case *lua.LTable:
		return encodeTable(t, visiting)
	case *lua.LFunction:
		return nil, errors.New("cannot encode function to JSON")
	}
	return nil, fmt.Errorf("cannot encode %s to JSON", v.Type().String())
}

func encodeTable(t *lua.LTable, visiting map[*lua.LTable]bool) ([]byte, error) {
	if visiting[t] {
		return nil, errors.New("cannot encode recursively nested tables to JSON")
	}
	visiting[t] = true
	defer delete(visiting, t)

	var strKeys []string
	var numKeys []int
	bad := false
	t.ForEach(func(k, _ lua.LValue) {
		switch key := k.(type) {
		case lua.LString:
			strKeys = append(strKeys, string(key))
		case lua.LNumber:
			if f := float64(key); f == float64(int(f)) && f >= 1 {
				numKeys = append(numKeys, int(f))
			} else {
				bad = true
			}
		default:
			bad = true
		}
	})
	if bad || (len(strKeys) > 0 && len(numKeys) > 0) {
		return nil, errors.New("cannot encode mixed or invalid key types")
	}
	var buf bytes.Buffer
	if len(strKeys) > 0 {
		sort.Strings(strKeys)
		buf.WriteByte('{')
		for i, k := range strKeys {
			if i > 0 {
				buf.WriteByte(',')
			}
			kj, _ := json.Marshal(k)
			buf.Write(kj)
			buf.WriteByte(':')
			vj, err := encodeValue(t.RawGetString(k), visiting)
			if err != nil {
				return nil, err
			}
			buf.Write(vj)
		}
		buf.WriteByte('}')
		return buf.Bytes(), nil
	}
	sort.Ints(numKeys)
	for i, k := range numKeys {
		if k != i+1 {
			return nil, errors.New("cannot encode sparse array")
		}
	}
	buf.WriteByte('[')
	for i := range numKeys {
		if i > 0 {
			buf.WriteByte(',')
		}
		vj, err := encodeValue(t.RawGet(lua.LNumber(i+1)), visiting)
		if err != nil {
			return nil, err
		}
		buf.Write(vj)
	}
	buf.WriteByte(']')
	return buf.Bytes(), nil
}
