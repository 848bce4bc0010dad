package main

import (
	"testing"

	v1 "k8s.io/api/core/v1"
)

// A mirror pod the node lifecycle controller marked not Ready while the node was NotReady is written
// back once the kubelet's own status says Ready (the status manager's reconcile).
func TestSameStatusSeesAConditionChangedByAnotherComponent(t *testing.T) {
	ready := func(s v1.ConditionStatus) v1.PodStatus {
		return v1.PodStatus{Phase: v1.PodRunning, Conditions: []v1.PodCondition{{Type: v1.PodReady, Status: s}, {Type: v1.ContainersReady, Status: v1.ConditionTrue}}}
	}
	if !sameStatus(ready(v1.ConditionTrue), ready(v1.ConditionTrue)) {
		t.Fatal("equal statuses are not the same")
	}
	if sameStatus(ready(v1.ConditionFalse), ready(v1.ConditionTrue)) {
		t.Fatal("a Ready condition set False by the node controller is taken as the kubelet's own")
	}
	api := ready(v1.ConditionTrue)
	api.Conditions = api.Conditions[1:]
	if sameStatus(api, ready(v1.ConditionTrue)) {
		t.Fatal("a condition missing in the API's status is not written")
	}
}
