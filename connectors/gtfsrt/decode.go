package gtfsrt

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"

	rt "github.com/MobilityData/gtfs-realtime-bindings/golang/gtfs"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/cityhub/cityhub/connectors"
)

// Feed kinds: which entities of a FeedMessage a source reads.
const (
	VehiclePositions = "vehicle_positions"
	TripUpdates      = "trip_updates"
	Alerts           = "alerts"
)

// Message is a decoded feed: its header timestamp (epoch seconds, 0 when
// absent) and one record per entity of the kind asked for.
type Message struct {
	HeaderTimestamp uint64
	// Entities counts every entity of the feed, of any kind.
	Entities int
	// Other counts the entities of other kinds, by kind, which are not
	// records.
	Other   map[string]int
	Records []connectors.Record
}

// Decode parses a GTFS-Realtime FeedMessage and flattens the entities of
// kind (VehiclePositions, TripUpdates or Alerts) into records. loc names
// the feed in positions; feedID is copied into every record. An entity it
// cannot flatten (no id, a position without coordinates) becomes a record
// with Err set. The error is for bytes that are not a feed.
func Decode(data []byte, kind, feedID, loc string) (*Message, error) {
	var m rt.FeedMessage
	// Required fields are checked per entity below, so that one bad
	// entity does not lose the feed.
	if err := (proto.UnmarshalOptions{AllowPartial: true}).Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("not a GTFS-realtime feed: %w", err)
	}
	if m.Header == nil {
		return nil, errors.New("not a GTFS-realtime feed: no header")
	}
	out := &Message{HeaderTimestamp: m.GetHeader().GetTimestamp(), Entities: len(m.Entity), Other: map[string]int{}}
	for i, e := range m.Entity {
		var payload bool
		var other string
		switch kind {
		case VehiclePositions:
			payload = e.Vehicle != nil
		case TripUpdates:
			payload = e.TripUpdate != nil
		case Alerts:
			payload = e.Alert != nil
		}
		if !payload {
			switch {
			case e.Vehicle != nil:
				other = VehiclePositions
			case e.TripUpdate != nil:
				other = TripUpdates
			case e.Alert != nil:
				other = Alerts
			default:
				other = "empty"
			}
			if e.GetIsDeleted() && other == "empty" {
				// a deletion of an incremental feed names no kind: keep it
				payload = true
			} else {
				out.Other[other]++
				continue
			}
		}
		out.Records = append(out.Records, flatten(e, i, kind, feedID, loc, out.HeaderTimestamp))
	}
	return out, nil
}

// flatten turns one entity into a record.
func flatten(e *rt.FeedEntity, i int, kind, feedID, loc string, header uint64) connectors.Record {
	rec := connectors.Record{Pos: connectors.Position{File: loc, Index: i, Path: "entity[" + strconv.Itoa(i) + "]"}}
	rec.Pos.Message = fmt.Sprintf("entity[%d] id %q", i, e.GetId())
	f := map[string]any{"feed_id": feedID}
	if header != 0 {
		f["header_timestamp"] = int64(header)
	}
	var err error
	switch {
	case e.Id == nil || e.GetId() == "":
		err = errors.New("entity has no id")
	case kind == VehiclePositions && e.Vehicle != nil:
		rec.Geometry, err = vehicleFields(f, e.Vehicle)
	case kind == TripUpdates && e.TripUpdate != nil:
		tripUpdateFields(f, e.TripUpdate)
	case kind == Alerts && e.Alert != nil:
		alertFields(f, e.Alert)
	}
	if err != nil {
		rec.Err = fmt.Errorf("entity %q: %w", e.GetId(), err)
		rec.Geometry = nil
		rec.Raw, _ = protojson.Marshal(e)
		return rec
	}
	f["entity_id"] = e.GetId()
	if e.GetIsDeleted() {
		f["is_deleted"] = true
	}
	if _, ok := f["updated_at"]; !ok && header != 0 {
		f["updated_at"] = int64(header)
	}
	rec.Fields = f
	return rec
}

// setString sets a field when the value is not empty.
func setString(f map[string]any, name string, p *string) {
	if p != nil && *p != "" {
		f[name] = *p
	}
}

// setTime sets timestamp and updated_at from an entity's own timestamp.
func setTime(f map[string]any, p *uint64) {
	if p != nil && *p != 0 && *p <= math.MaxInt64 {
		f["timestamp"] = int64(*p)
		f["updated_at"] = int64(*p)
	}
}

// float32Value renders a float32 as the shortest float64 with the same
// text (37.37046, not 37.370460510253906); ok is false for NaN and
// infinities.
func float32Value(x float32) (float64, bool) {
	v := float64(x)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, false
	}
	v, _ = strconv.ParseFloat(strconv.FormatFloat(v, 'g', -1, 32), 64)
	return v, true
}

func tripFields(f map[string]any, t *rt.TripDescriptor) {
	if t == nil {
		return
	}
	setString(f, "trip_id", t.TripId)
	setString(f, "route_id", t.RouteId)
	setString(f, "start_date", t.StartDate)
	setString(f, "start_time", t.StartTime)
	if t.DirectionId != nil {
		f["direction_id"] = int64(*t.DirectionId)
	}
	if t.ScheduleRelationship != nil {
		f["schedule_relationship"] = t.ScheduleRelationship.String()
	}
}

// vehicleDescriptor sets the vehicle fields and vehicle_key: the vehicle
// id, else its label.
func vehicleDescriptor(f map[string]any, v *rt.VehicleDescriptor) {
	if v == nil {
		return
	}
	setString(f, "vehicle_id", v.Id)
	setString(f, "vehicle_label", v.Label)
	setString(f, "vehicle_license_plate", v.LicensePlate)
	switch {
	case v.GetId() != "":
		f["vehicle_key"] = v.GetId()
	case v.GetLabel() != "":
		f["vehicle_key"] = v.GetLabel()
	}
}

// vehicleFields flattens a VehiclePosition and returns its GeoJSON point.
func vehicleFields(f map[string]any, v *rt.VehiclePosition) (json.RawMessage, error) {
	tripFields(f, v.Trip)
	vehicleDescriptor(f, v.Vehicle)
	setTime(f, v.Timestamp)
	setString(f, "stop_id", v.StopId)
	if v.CurrentStatus != nil {
		f["current_status"] = v.CurrentStatus.String()
	}
	if v.CurrentStopSequence != nil {
		f["current_stop_sequence"] = int64(*v.CurrentStopSequence)
	}
	if v.CongestionLevel != nil {
		f["congestion_level"] = v.CongestionLevel.String()
	}
	if v.OccupancyStatus != nil {
		f["occupancy_status"] = v.OccupancyStatus.String()
	}
	if v.OccupancyPercentage != nil {
		f["occupancy_percentage"] = int64(*v.OccupancyPercentage)
	}
	p := v.Position
	if p == nil {
		return nil, nil
	}
	if p.Latitude == nil || p.Longitude == nil {
		return nil, errors.New("position without latitude or longitude")
	}
	lat, okLat := float32Value(*p.Latitude)
	lon, okLon := float32Value(*p.Longitude)
	if !okLat || !okLon || lat < -90 || lat > 90 || lon < -180 || lon > 180 {
		return nil, fmt.Errorf("position (%v, %v) is not a WGS84 position", *p.Latitude, *p.Longitude)
	}
	f["lat"], f["lon"] = lat, lon
	for _, x := range []struct {
		name string
		p    *float32
	}{{"bearing", p.Bearing}, {"speed", p.Speed}} {
		if x.p != nil {
			if v, ok := float32Value(*x.p); ok {
				f[x.name] = v
			}
		}
	}
	if p.Odometer != nil && !math.IsNaN(*p.Odometer) && !math.IsInf(*p.Odometer, 0) {
		f["odometer"] = *p.Odometer
	}
	g := []byte(`{"type":"Point","coordinates":[`)
	g = strconv.AppendFloat(g, lon, 'f', -1, 64)
	g = append(g, ',')
	g = strconv.AppendFloat(g, lat, 'f', -1, 64)
	return append(g, "]}"...), nil
}

func stopTimeEvent(m map[string]any, prefix string, e *rt.TripUpdate_StopTimeEvent) {
	if e == nil {
		return
	}
	if e.Delay != nil {
		m[prefix+"_delay"] = int64(*e.Delay)
	}
	if e.Time != nil {
		m[prefix+"_time"] = *e.Time
	}
	if e.Uncertainty != nil {
		m[prefix+"_uncertainty"] = int64(*e.Uncertainty)
	}
}

func tripUpdateFields(f map[string]any, u *rt.TripUpdate) {
	tripFields(f, u.Trip)
	vehicleDescriptor(f, u.Vehicle)
	setTime(f, u.Timestamp)
	if u.Delay != nil {
		f["delay"] = int64(*u.Delay)
	}
	updates := make([]any, 0, len(u.StopTimeUpdate))
	for _, s := range u.StopTimeUpdate {
		m := map[string]any{}
		if s.StopSequence != nil {
			m["stop_sequence"] = int64(*s.StopSequence)
		}
		setString(m, "stop_id", s.StopId)
		stopTimeEvent(m, "arrival", s.Arrival)
		stopTimeEvent(m, "departure", s.Departure)
		if s.ScheduleRelationship != nil {
			m["schedule_relationship"] = s.ScheduleRelationship.String()
		}
		updates = append(updates, m)
	}
	f["stop_time_updates"] = updates
}

// firstText returns the text of the first translation.
func firstText(t *rt.TranslatedString) (text, lang string) {
	if tr := t.GetTranslation(); len(tr) > 0 {
		return tr[0].GetText(), tr[0].GetLanguage()
	}
	return "", ""
}

func alertFields(f map[string]any, a *rt.Alert) {
	if a.Cause != nil {
		f["cause"] = a.Cause.String()
	}
	if a.Effect != nil {
		f["effect"] = a.Effect.String()
	}
	if a.SeverityLevel != nil {
		f["severity_level"] = a.SeverityLevel.String()
	}
	for _, x := range []struct {
		name string
		t    *rt.TranslatedString
	}{{"header_text", a.HeaderText}, {"description_text", a.DescriptionText}, {"url", a.Url}} {
		if text, lang := firstText(x.t); text != "" {
			f[x.name] = text
			if lang != "" && x.name == "header_text" {
				f["language"] = lang
			}
		}
	}
	periods := make([]any, 0, len(a.ActivePeriod))
	var first, last int64
	open := len(a.ActivePeriod) == 0
	for _, p := range a.ActivePeriod {
		m := map[string]any{}
		if p.Start != nil && *p.Start <= math.MaxInt64 {
			s := int64(*p.Start)
			m["start"] = s
			if first == 0 || s < first {
				first = s
			}
		}
		if p.End != nil && *p.End != 0 && *p.End <= math.MaxInt64 {
			e := int64(*p.End)
			m["end"] = e
			last = max(last, e)
		} else {
			open = true
		}
		periods = append(periods, m)
	}
	f["active_periods"] = periods
	if first != 0 {
		f["active_start"] = first
	}
	if !open && last != 0 {
		f["active_end"] = last
	}
	informed := make([]any, 0, len(a.InformedEntity))
	for _, s := range a.InformedEntity {
		m := map[string]any{}
		setString(m, "agency_id", s.AgencyId)
		setString(m, "route_id", s.RouteId)
		setString(m, "stop_id", s.StopId)
		if s.RouteType != nil {
			m["route_type"] = int64(*s.RouteType)
		}
		if s.DirectionId != nil {
			m["direction_id"] = int64(*s.DirectionId)
		}
		tripFields(m, s.Trip)
		informed = append(informed, m)
	}
	f["informed_entities"] = informed
}
